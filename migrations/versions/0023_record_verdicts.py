"""record verdicts: clients accept or reject delivered records within their project's window;
rework a client's rejection causes is not billed

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04 22:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "record_verdicts",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column(
            "batch_id",
            BIG_ID,
            sa.ForeignKey("batches.id", name=op.f("fk_record_verdicts_batch_id_batches")),
            nullable=False,
        ),
        sa.Column(
            "item_id", BIG_ID, sa.ForeignKey("items.id", name=op.f("fk_record_verdicts_item_id_items")), nullable=False
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(10), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("decided_by", sa.String(100), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("redelivered_version", sa.Integer()),
        sa.UniqueConstraint("item_id", "version", name=op.f("uq_record_verdicts_item_id")),
        sa.CheckConstraint("verdict IN ('accepted', 'rejected')", name=op.f("ck_record_verdicts_verdict")),
    )
    op.create_index("ix_record_verdicts_batch_id", "record_verdicts", ["batch_id"])
    # Existing rows are billable: a constant default adds the column without rewriting the table.
    op.add_column("assignments", sa.Column("billable", sa.Boolean(), server_default=sa.true(), nullable=False))


def downgrade() -> None:
    op.drop_column("assignments", "billable")
    op.drop_table("record_verdicts")
