"""assignments: no index on status, half of each page free, so the review's flip is a HOT update

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 03:20:00

The review accepts a batch's annotations at once (submitted -> accepted). With status in three
indexes (the expert's status, open work by due time, one live adjudication per item) every one of
those row versions went into every index of the table: 8-9 s for 300,000 annotations. What those
indexes need of the status now lives in two generated columns that the flip leaves NULL, and the
table keeps room on each page for the new versions, so PostgreSQL updates in place (HOT): <1 s.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE_ADJUDICATION = "role = 'adjudicate' AND status IN ('assigned', 'submitted', 'accepted')"
OPEN_EXPERT = "CASE WHEN status = 'assigned' THEN expert_id END"
LIVE_ADJUDICATION_ITEM = f"CASE WHEN {LIVE_ADJUDICATION} THEN item_id END"
OPEN = "open_expert_id IS NOT NULL"


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        # Before the columns are added: adding a stored column rewrites the table at this fill.
        op.execute("ALTER TABLE assignments SET (fillfactor = 50)")
    op.drop_index("ix_assignments_expert_status", table_name="assignments")
    op.drop_index("ix_assignments_open_due", table_name="assignments")
    op.drop_index("ix_assignments_one_live_adjudication", table_name="assignments")
    # PostgreSQL 15 stores generated columns; SQLite can add only virtual ones to a table.
    for name, expression in (("open_expert_id", OPEN_EXPERT), ("live_adjudication_item_id", LIVE_ADJUDICATION_ITEM)):
        op.add_column(
            "assignments", sa.Column(name, sa.BigInteger(), sa.Computed(expression, persisted=postgres), nullable=True)
        )
    op.create_index("ix_assignments_expert_id", "assignments", ["expert_id"])
    op.create_index(
        "ix_assignments_open_expert_id",
        "assignments",
        ["open_expert_id", "due_at"],
        postgresql_where=sa.text(OPEN),
        sqlite_where=sa.text(OPEN),
    )
    op.create_index(
        "ix_assignments_open_due", "assignments", ["due_at"], postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN)
    )
    op.create_index("ix_assignments_one_live_adjudication", "assignments", ["live_adjudication_item_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_assignments_one_live_adjudication", table_name="assignments")
    op.drop_index("ix_assignments_open_due", table_name="assignments")
    op.drop_index("ix_assignments_open_expert_id", table_name="assignments")
    op.drop_index("ix_assignments_expert_id", table_name="assignments")
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_column("live_adjudication_item_id")
        batch_op.drop_column("open_expert_id")
    op.create_index("ix_assignments_expert_status", "assignments", ["expert_id", "status"])
    waiting = sa.text("status = 'assigned'")
    op.create_index(
        "ix_assignments_open_due", "assignments", ["due_at"], postgresql_where=waiting, sqlite_where=waiting
    )
    live = sa.text(LIVE_ADJUDICATION)
    op.create_index(
        "ix_assignments_one_live_adjudication",
        "assignments",
        ["item_id"],
        unique=True,
        postgresql_where=live,
        sqlite_where=live,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE assignments RESET (fillfactor)")
