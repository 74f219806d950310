"""scale-out: call leases (issue 21)

A side-effecting tool call claims its idempotency key here before its handler acts, and the lease goes
with the stored result: a redelivery that finds a live lease waits for that result instead of acting
again, and one that finds it expired (its worker died mid-call) takes over. ``memories.call_key`` keys a
remembered fact by the call that stored it, so remembering it again after a takeover finds the fact
instead of storing it twice; ``reminders.call_key`` does the same for a created reminder.

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "call_leases",
        sa.Column("key", sa.String(length=200), primary_key=True),
        sa.Column("tool", sa.String(length=100), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("takeovers", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.add_column("memories", sa.Column("call_key", sa.String(length=200), nullable=True))
    op.create_index("ux_memories_call_key", "memories", ["call_key"], unique=True)
    op.add_column("reminders", sa.Column("call_key", sa.String(length=200), nullable=True))
    op.create_index("ux_reminders_call_key", "reminders", ["call_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_reminders_call_key", table_name="reminders")
    op.drop_column("reminders", "call_key")
    op.drop_index("ux_memories_call_key", table_name="memories")
    op.drop_column("memories", "call_key")
    op.drop_table("call_leases")
