"""notion: knowledge sync state (issue 20)

One row per configured Notion data source or page (cursor, last run, counts, errors: the sync status
``kommandant doctor`` shows) and one per imported page (its knowledge entry, last_edited_time and content
hash: what the next sync compares against).

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notion_sources",
        sa.Column("source_id", sa.String(length=100), primary_key=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("cursor", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_ok_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reconciled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pages", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("imported", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("removed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("conflicts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("errors", postgresql.JSONB(), nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "notion_pages",
        sa.Column("page_id", sa.String(length=100), primary_key=True),
        sa.Column(
            "source_id",
            sa.String(length=100),
            sa.ForeignKey("notion_sources.source_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("last_edited_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "entry_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("knowledge_entries.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("synced_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_notion_pages_source_id", "notion_pages", ["source_id"])
    op.create_index("ix_notion_pages_entry_id", "notion_pages", ["entry_id"])


def downgrade() -> None:
    op.drop_index("ix_notion_pages_entry_id", table_name="notion_pages")
    op.drop_index("ix_notion_pages_source_id", table_name="notion_pages")
    op.drop_table("notion_pages")
    op.drop_table("notion_sources")
