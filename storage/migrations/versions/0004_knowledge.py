"""knowledge and embedding changes (issue 7)

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_memories_episodes ON memories (user_id, kind, (data ->> 'thread'), created_at)"
    )
    op.create_index("ix_knowledge_entries_created_at", "knowledge_entries", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_knowledge_entries_created_at", table_name="knowledge_entries")
    op.drop_index("ix_memories_episodes", table_name="memories")
