"""scheduler: schedule and run columns

A schedule keeps its command as intents (tool + arguments, understood when it was created), the owner's
role at creation, its thread, a concurrency limit and a misfire policy with a grace window. A run is
claimed by inserting it: the unique (schedule_id, due_at) key lets exactly one claimer win an occurrence.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add = op.add_column
    add(
        "schedules",
        sa.Column("intents", postgresql.JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False),
    )
    add("schedules", sa.Column("owner_role", sa.String(length=20), server_default="viewer", nullable=False))
    add("schedules", sa.Column("thread_id", sa.String(length=200), nullable=True))
    add("schedules", sa.Column("concurrency", sa.Integer(), server_default="1", nullable=False))
    add("schedules", sa.Column("misfire", sa.String(length=10), server_default="once", nullable=False))
    add("schedules", sa.Column("grace_seconds", sa.Integer(), server_default="60", nullable=False))
    add(
        "scheduled_runs",
        sa.Column("trigger", sa.String(length=20), server_default="schedule", nullable=False),
    )
    op.alter_column(
        "scheduled_runs", "status", type_=sa.String(length=40), existing_type=sa.String(length=20)
    )
    op.create_unique_constraint("uq_scheduled_runs_occurrence", "scheduled_runs", ["schedule_id", "due_at"])
    op.create_index(
        "ix_scheduled_runs_active",
        "scheduled_runs",
        ["status"],
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )


def downgrade() -> None:
    op.drop_index("ix_scheduled_runs_active", table_name="scheduled_runs")
    op.drop_constraint("uq_scheduled_runs_occurrence", "scheduled_runs", type_="unique")
    op.execute("UPDATE scheduled_runs SET status = left(status, 20)")
    op.alter_column(
        "scheduled_runs", "status", type_=sa.String(length=20), existing_type=sa.String(length=40)
    )
    op.drop_column("scheduled_runs", "trigger")
    for column in ("grace_seconds", "misfire", "concurrency", "thread_id", "owner_role", "intents"):
        op.drop_column("schedules", column)
