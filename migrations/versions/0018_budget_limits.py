"""budget limits: ops' raises of a batch's or a project's budget above its spec's

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 18:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "budget_limits",
        sa.Column("id", big, nullable=False),
        sa.Column("project_id", big, nullable=False),
        sa.Column("batch_id", big, nullable=True),
        sa.Column("usd", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("hours", sa.Numeric(precision=12, scale=1), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False
        ),
        sa.CheckConstraint("usd IS NULL OR usd >= 0", name=op.f("ck_budget_limits_usd")),
        sa.CheckConstraint("hours IS NULL OR hours >= 0", name=op.f("ck_budget_limits_hours")),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_budget_limits_project_id_projects")),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"], name=op.f("fk_budget_limits_batch_id_batches")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_limits")),
    )
    op.create_index("ix_budget_limits_scope", "budget_limits", ["project_id", "batch_id", "id"])


def downgrade() -> None:
    op.drop_table("budget_limits")
