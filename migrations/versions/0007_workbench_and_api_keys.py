"""workbench: drafts, review assignments naming their annotation, hashed API keys

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subject_submission_id", BigId, nullable=True))
        batch_op.create_unique_constraint("uq_assignments_subject_submission_id", ["subject_submission_id"])
        batch_op.create_foreign_key(
            "fk_assignments_subject_submission_id_submissions", "submissions", ["subject_submission_id"], ["id"]
        )
    op.create_table(
        "assignment_drafts",
        sa.Column("assignment_id", BigId, nullable=False),
        sa.Column("answer", JSONType, nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["assignment_id"],
            ["assignments.id"],
            name="fk_assignment_drafts_assignment_id_assignments",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("assignment_id", name="pk_assignment_drafts"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("expert_id", BigId, nullable=True),
        sa.Column("client_id", BigId, nullable=True),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False
        ),
        sa.CheckConstraint("kind IN ('expert', 'client')", name="ck_api_keys_kind"),
        sa.CheckConstraint(
            "(kind = 'expert' AND expert_id IS NOT NULL AND client_id IS NULL) OR "
            "(kind = 'client' AND client_id IS NOT NULL AND expert_id IS NULL)",
            name="ck_api_keys_owner",
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name="fk_api_keys_client_id_clients", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["expert_id"], ["experts.id"], name="fk_api_keys_expert_id_experts", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_index("ix_api_keys_client_id", "api_keys", ["client_id"])
    op.create_index("ix_api_keys_expert_id", "api_keys", ["expert_id"])


def downgrade() -> None:
    op.drop_index("ix_api_keys_expert_id", table_name="api_keys")
    op.drop_index("ix_api_keys_client_id", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("assignment_drafts")
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_constraint("fk_assignments_subject_submission_id_submissions", type_="foreignkey")
        batch_op.drop_constraint("uq_assignments_subject_submission_id", type_="unique")
        batch_op.drop_column("subject_submission_id")
