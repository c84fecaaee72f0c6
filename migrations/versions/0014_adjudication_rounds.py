"""adjudication in rounds: one live adjudication per item, a settled one no longer blocks the next

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 11:00:00

An accepted (settled) adjudication counted as live, so an item could be adjudicated once: one that
still disagreed afterwards, or that a pause reopened, waited for an adjudicator nobody could claim
and held its batch for ever. Live is now what is in hand: assigned or submitted.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = "CASE WHEN role = 'adjudicate' AND status IN ('assigned', 'submitted', 'accepted') THEN item_id END"
NEW = "CASE WHEN role = 'adjudicate' AND status IN ('assigned', 'submitted') THEN item_id END"


def _live_column(expression: str) -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.drop_index("ix_assignments_one_live_adjudication", table_name="assignments")
    # A plain DROP COLUMN: a batch table copy would write the other generated column (SQLite refuses).
    op.execute("ALTER TABLE assignments DROP COLUMN live_adjudication_item_id")
    # PostgreSQL 15 stores generated columns; SQLite can add only virtual ones to a table.
    op.add_column(
        "assignments",
        sa.Column("live_adjudication_item_id", sa.BigInteger(), sa.Computed(expression, persisted=postgres)),
    )
    op.create_index("ix_assignments_one_live_adjudication", "assignments", ["live_adjudication_item_id"], unique=True)


def upgrade() -> None:
    _live_column(NEW)


def downgrade() -> None:
    _live_column(OLD)
