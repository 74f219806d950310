"""audit rows carry their owner: the person whose turn or call a row records (per-user visibility)

Rows written before this revision are owned by their actor (the person for turn rows). The backfill
keeps the hash chain intact: a row's hash covers its owner only where the owner differs from the actor
(``storage.audit.entry_hash``), so setting ``owner = actor`` changes no hash. A downgrade drops the
column: rows written since whose owner differs from their actor (a reminder an agent fired for a person)
then no longer verify.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("owner", sa.String(length=200), nullable=True))
    op.execute("UPDATE audit_log SET owner = actor WHERE owner IS NULL")
    op.create_index("ix_audit_log_owner_seq", "audit_log", ["owner", "seq"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_owner_seq", table_name="audit_log")
    op.drop_column("audit_log", "owner")
