"""bot executor: what a bot is (description, CPU share limit, secrets, pinned executor, source, who
started it) and what each run did (executor host and process, pid start time, signal, peak RSS, CPU
seconds, reason)

Runs take the state names of the supervisor: starting, running, stopping, stopped, exited, failed.
Runs written before this revision as 'crashed' become 'exited'.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BOT_COLUMNS = (
    sa.Column("description", sa.Text(), server_default="", nullable=False),
    sa.Column("secret_keys", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False),
    sa.Column("cpu_percent_limit", sa.Float(), nullable=True),
    sa.Column("host", sa.String(length=200), nullable=True),
    sa.Column("source", sa.String(length=20), server_default="cli", nullable=False),
    sa.Column("manifest_path", sa.String(length=2000), nullable=True),
    sa.Column("started_by", sa.String(length=200), nullable=True),
    sa.Column("started_channel", sa.String(length=50), nullable=True),
    sa.Column("started_thread", sa.String(length=200), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
)
_RUN_COLUMNS = (
    sa.Column("host", sa.String(length=200), nullable=True),
    sa.Column("executor_pid", sa.Integer(), nullable=True),
    sa.Column("executor_started", sa.Float(), nullable=True),
    sa.Column("create_time", sa.Float(), nullable=True),
    sa.Column("signal", sa.Integer(), nullable=True),
    sa.Column("peak_rss", sa.BigInteger(), server_default="0", nullable=False),
    sa.Column("cpu_seconds", sa.Float(), server_default="0", nullable=False),
    sa.Column("reason", sa.Text(), nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
)


def upgrade() -> None:
    for column in _BOT_COLUMNS:
        op.add_column("bots", column)
    for run_column in _RUN_COLUMNS:
        op.add_column("bot_runs", run_column)
    op.create_index("ix_bot_runs_host", "bot_runs", ["host"])
    op.execute("UPDATE bot_runs SET status = 'exited' WHERE status = 'crashed'")


def downgrade() -> None:
    op.drop_index("ix_bot_runs_host", table_name="bot_runs")
    for run_column in reversed(_RUN_COLUMNS):
        op.drop_column("bot_runs", run_column.name)
    for column in reversed(_BOT_COLUMNS):
        op.drop_column("bots", column.name)
