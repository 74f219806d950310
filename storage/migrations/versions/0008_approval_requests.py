"""approvals bound to a live request: the requester's role, whether they still wait, who ran the call

Approvals stored before this revision get the role 'viewer': approved after their requester left, such a
call is refused by policy instead of running with more rights than anyone recorded.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "approvals",
        sa.Column("requester_role", sa.String(20), nullable=False, server_default="viewer"),
    )
    op.add_column("approvals", sa.Column("requester_alive_until", sa.DateTime(timezone=True)))
    op.add_column("approvals", sa.Column("runner", sa.String(20)))


def downgrade() -> None:
    op.drop_column("approvals", "runner")
    op.drop_column("approvals", "requester_alive_until")
    op.drop_column("approvals", "requester_role")
