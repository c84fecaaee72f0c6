"""delivery versions with reasons, pages as stored record arrays, endpoints disabled on 410

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("webhook_disabled_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("webhook_disabled_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("page_count", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("reason", sa.Text(), server_default="first delivery", nullable=False))
    with op.batch_alter_table("delivery_messages", schema=None) as batch_op:
        batch_op.alter_column("body", new_column_name="records", existing_type=sa.Text(), existing_nullable=False)
        batch_op.add_column(sa.Column("record_count", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("delivery_messages", schema=None) as batch_op:
        batch_op.drop_column("record_count")
        batch_op.alter_column("records", new_column_name="body", existing_type=sa.Text(), existing_nullable=False)
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("reason")
        batch_op.drop_column("page_count")
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("webhook_disabled_reason")
        batch_op.drop_column("webhook_disabled_at")
