"""expert routing index and missed assignments

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("experts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("missed_count", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "expert_routes",
        sa.Column("skill", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("expert_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("reliability", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["expert_id"], ["experts.id"], name=op.f("fk_expert_routes_expert_id_experts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("skill", "language", "expert_id", name=op.f("pk_expert_routes")),
    )
    op.create_index("ix_expert_routes_best", "expert_routes", ["skill", "language", "reliability", "expert_id"])
    op.create_index("ix_expert_routes_expert", "expert_routes", ["expert_id"])
    op.create_index(
        "ix_experts_routing",
        "experts",
        ["id"],
        postgresql_include=[
            "status",
            "timezone",
            "work_start_hour",
            "work_hours",
            "reliability",
            "capacity",
            "hourly_rate",
        ],
    )
    # The unique (item_id, expert_id, role) index serves lookups by item: one index less to write.
    op.drop_index("ix_assignments_item_role", table_name="assignments")
    op.create_index(
        "ix_assignments_open_due",
        "assignments",
        ["due_at"],
        postgresql_where=sa.text("status = 'assigned'"),
        sqlite_where=sa.text("status = 'assigned'"),
    )
    # Existing experts get their routes now; from here on nightshift.experts.routing keeps them in step.
    op.execute(
        "INSERT INTO expert_routes (skill, language, expert_id, reliability) "
        "SELECT s.skill, l.language, e.id, e.reliability FROM experts e "
        "JOIN expert_skills s ON s.expert_id = e.id JOIN expert_languages l ON l.expert_id = e.id "
        "UNION ALL SELECT '*', l.language, e.id, e.reliability FROM experts e "
        "JOIN expert_languages l ON l.expert_id = e.id"
    )


def downgrade() -> None:
    op.drop_index("ix_assignments_open_due", table_name="assignments")
    op.create_index("ix_assignments_item_role", "assignments", ["item_id", "role"])
    op.drop_index("ix_experts_routing", table_name="experts")
    op.drop_index("ix_expert_routes_expert", table_name="expert_routes")
    op.drop_index("ix_expert_routes_best", table_name="expert_routes")
    op.drop_table("expert_routes")
    with op.batch_alter_table("experts", schema=None) as batch_op:
        batch_op.drop_column("missed_count")
