"""ingest sources and quarantine resolution

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 04:28:45.867684
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_format", sa.String(length=12), server_default="jsonl", nullable=False))
        batch_op.add_column(sa.Column("ingest_completed_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("quarantined_rows", schema=None) as batch_op:
        batch_op.add_column(sa.Column("file_level", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("resolved_item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True)
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_quarantined_rows_resolved_item_id_items"), "items", ["resolved_item_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("quarantined_rows", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_quarantined_rows_resolved_item_id_items"), type_="foreignkey")
        batch_op.drop_column("resolved_item_id")
        batch_op.drop_column("resolved_at")
        batch_op.drop_column("file_level")

    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_column("ingest_completed_at")
        batch_op.drop_column("source_format")
