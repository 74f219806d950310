"""connectors: Slack user mapping and delivery ids seen once (issue 20)

Connector health goes into the existing connector_state table (key 'health').

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "slack_users",
        sa.Column("slack_user_id", sa.String(length=50), primary_key=True),
        sa.Column("account", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "connector_deliveries",
        sa.Column("source", sa.String(length=100), primary_key=True),
        sa.Column("delivery_id", sa.String(length=200), primary_key=True),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_connector_deliveries_received_at", "connector_deliveries", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_connector_deliveries_received_at", table_name="connector_deliveries")
    op.drop_table("connector_deliveries")
    op.drop_table("slack_users")
