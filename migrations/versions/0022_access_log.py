"""access log: who read which item's content, for an audit

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "access_log",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("actor_kind", sa.String(10), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("via", sa.String(20), nullable=False),
        sa.Column("batch_id", BIG_ID),
        sa.Column("item_id", BIG_ID),
        sa.Column("assignment_id", BIG_ID),
        sa.Column("detail", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
        sa.CheckConstraint("actor_kind IN ('expert', 'ops', 'client')", name=op.f("ck_access_log_actor_kind")),
    )
    op.create_index("ix_access_log_item_id", "access_log", ["item_id"])
    op.create_index("ix_access_log_at", "access_log", ["at"])


def downgrade() -> None:
    op.drop_table("access_log")
