"""submission signals: signs of low effort or copying found on a submission, with their evidence,
and the risk they add up to; each expert's count of risky submissions

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-04 23:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
KINDS = ("pasted", "rushed", "echo", "copy", "near_duplicate", "same_sequence", "risk")


def upgrade() -> None:
    op.create_table(
        "submission_signals",
        sa.Column(
            "submission_id",
            BIG_ID,
            sa.ForeignKey(
                "submissions.id", name=op.f("fk_submission_signals_submission_id_submissions"), ondelete="CASCADE"
            ),
            primary_key=True,
        ),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("evidence", JSON, nullable=False),
        sa.Column("found_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint(
            "kind IN (" + ", ".join(f"'{k}'" for k in KINDS) + ")", name=op.f("ck_submission_signals_kind")
        ),
        sa.CheckConstraint("score >= 0 AND score <= 1", name=op.f("ck_submission_signals_score")),
    )
    op.add_column("experts", sa.Column("flagged_submissions", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    op.drop_column("experts", "flagged_submissions")
    op.drop_table("submission_signals")
