"""control panel: the event log the live stream resumes from (issue 19)

``panel_events`` holds what the control panel's live stream shows, each row with an increasing id that a
reconnecting client names in ``Last-Event-ID``. Rows come from two places: a trigger copies the audit
rows that are events (turns, tool calls and results, approvals, scheduled runs, reminders fired) in
the same transaction as the audit append, so nothing audited is missing from the stream; the panel's
recorder adds what only the bus carries (agents up and down, every bot state change), de-duplicated by
``dedupe`` when several web processes record the same one. Every insert takes one advisory lock, so ids
become visible in order and a reader that saw id N never later finds a smaller one committed.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EVENT_LOCK = 0x6B6F6D6D65767473  # "kommevts": shared with storage/events.py
AUDITED_KINDS = (
    "turn",
    "tool_call",
    "tool_result",
    "refused",
    "approval_requested",
    "approval_decided",
    "approval_expired",
    "approval_result_sent",
    "scheduled_run",
    "reminder_fired",
)


def upgrade() -> None:
    op.create_table(
        "panel_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("data", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("dedupe", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe", name="uq_panel_events_dedupe"),
    )
    op.create_index("ix_panel_events_ts", "panel_events", ["ts"])
    op.create_index("ix_panel_events_kind_id", "panel_events", ["kind", "id"])  # the calls view
    kinds = ", ".join(f"'{k}'" for k in AUDITED_KINDS)
    op.execute(
        f"""
        CREATE FUNCTION panel_event_from_audit() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock({EVENT_LOCK});
            INSERT INTO panel_events (ts, kind, owner, data)
            VALUES (
                NEW.ts, NEW.kind, COALESCE(NEW.owner, NEW.actor),
                (COALESCE(NEW.data, '{{}}'::jsonb) - 'arguments')
                || jsonb_strip_nulls(jsonb_build_object(
                    'tool', NEW.tool, 'channel', NEW.channel, 'thread', NEW.thread_id,
                    'actor', NEW.actor, 'audit_seq', NEW.seq))
            );
            RETURN NULL;
        END
        $$ LANGUAGE plpgsql
        """
    )
    op.execute(  # one statement per call: asyncpg prepares each
        f"""
        CREATE TRIGGER audit_log_panel_events AFTER INSERT ON audit_log
            FOR EACH ROW WHEN (NEW.kind IN ({kinds}))
            EXECUTE FUNCTION panel_event_from_audit();
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS audit_log_panel_events ON audit_log")
    op.execute("DROP FUNCTION IF EXISTS panel_event_from_audit()")
    op.drop_index("ix_panel_events_kind_id", table_name="panel_events")
    op.drop_index("ix_panel_events_ts", table_name="panel_events")
    op.drop_table("panel_events")
