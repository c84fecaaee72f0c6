"""adjudication: items awaiting an adjudicator, one live adjudication per item; Data Docs per gate run

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_ITEM_STATUSES = "status IN ('pending', 'assigned', 'rework', 'passed', 'delivered', 'unassignable')"
NEW_ITEM_STATUSES = "status IN ('pending', 'assigned', 'rework', 'adjudication', 'passed', 'delivered', 'unassignable')"
LIVE_ADJUDICATION = "role = 'adjudicate' AND status IN ('assigned', 'submitted', 'accepted')"


def upgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_items_status"), type_="check")
        batch_op.create_check_constraint("status", NEW_ITEM_STATUSES)
    with op.batch_alter_table("gate_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("docs_url", sa.Text(), nullable=True))
    op.create_index(
        "ix_assignments_one_live_adjudication",
        "assignments",
        ["item_id"],
        unique=True,
        postgresql_where=sa.text(LIVE_ADJUDICATION),
        sqlite_where=sa.text(LIVE_ADJUDICATION),
    )


def downgrade() -> None:
    op.drop_index("ix_assignments_one_live_adjudication", table_name="assignments")
    with op.batch_alter_table("gate_runs", schema=None) as batch_op:
        batch_op.drop_column("docs_url")
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_items_status"), type_="check")
        batch_op.create_check_constraint("status", OLD_ITEM_STATUSES)
