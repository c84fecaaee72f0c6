"""qualification and appeals: skill levels granted by exams, exams and training sets with their
attempts, and experts' appeals against a correction or a gold answer

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04 23:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")


def _fk(table: str, column: str, target: str, ondelete: str | None = None) -> sa.ForeignKey:
    return sa.ForeignKey(f"{target}.id", name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete)


def upgrade() -> None:
    # Claimed skills are level 0: a constant default adds the columns without rewriting the tables.
    op.add_column("expert_skills", sa.Column("level", sa.Integer(), server_default="0", nullable=False))
    op.add_column("expert_routes", sa.Column("level", sa.Integer(), server_default="0", nullable=False))
    # The level in the routing index (PostgreSQL INCLUDE): a project asking for one reads no table rows.
    op.drop_index("ix_expert_routes_best", table_name="expert_routes")
    op.create_index(
        "ix_expert_routes_best",
        "expert_routes",
        ["skill", "language", "reliability", "expert_id"],
        postgresql_include=["level"],
    )
    op.create_table(
        "exams",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column("slug", sa.String(100), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("skill", sa.String(64), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("pass_mark", sa.Float(), nullable=False),
        sa.Column("cooldown_hours", sa.Float(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("labels", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("slug", name=op.f("uq_exams_slug")),
        sa.CheckConstraint("kind IN ('exam', 'training')", name=op.f("ck_exams_kind")),
        sa.CheckConstraint("pass_mark >= 0 AND pass_mark <= 1", name=op.f("ck_exams_pass_mark")),
        sa.CheckConstraint("level >= 1 AND level <= 5", name=op.f("ck_exams_level")),
        sa.CheckConstraint("max_attempts >= 1", name=op.f("ck_exams_max_attempts")),
        sa.CheckConstraint("cooldown_hours >= 0", name=op.f("ck_exams_cooldown")),
    )
    op.create_index("ix_exams_skill", "exams", ["skill"])
    op.create_table(
        "exam_items",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column("exam_id", BIG_ID, _fk("exam_items", "exam_id", "exams", "CASCADE"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("content", JSON, nullable=False),
        sa.Column("answer", JSON, nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.UniqueConstraint("exam_id", "position", name=op.f("uq_exam_items_exam_id")),
    )
    op.create_table(
        "exam_attempts",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column("exam_id", BIG_ID, _fk("exam_attempts", "exam_id", "exams", "CASCADE"), nullable=False),
        sa.Column("expert_id", BIG_ID, _fk("exam_attempts", "expert_id", "experts"), nullable=False),
        sa.Column("attempt_no", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), server_default="open", nullable=False),
        sa.Column("score", sa.Float()),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("exam_id", "expert_id", "attempt_no", name=op.f("uq_exam_attempts_exam_id")),
        sa.CheckConstraint(
            "status IN ('open', 'pending_review', 'passed', 'failed')", name=op.f("ck_exam_attempts_status")
        ),
    )
    op.create_index("ix_exam_attempts_expert_id", "exam_attempts", ["expert_id", "exam_id"])
    op.create_table(
        "exam_answers",
        sa.Column(
            "attempt_id",
            BIG_ID,
            _fk("exam_answers", "attempt_id", "exam_attempts", "CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "exam_item_id",
            BIG_ID,
            _fk("exam_answers", "exam_item_id", "exam_items", "CASCADE"),
            primary_key=True,
        ),
        sa.Column("answer", JSON, nullable=False),
        sa.Column("correct", sa.Boolean()),
        sa.Column("graded_by", sa.String(100)),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "appeals",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column("submission_id", BIG_ID, _fk("appeals", "submission_id", "submissions"), nullable=False),
        sa.Column("expert_id", BIG_ID, _fk("appeals", "expert_id", "experts"), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("review_id", BIG_ID, _fk("appeals", "review_id", "reviews")),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(10), server_default="open", nullable=False),
        sa.Column("decided_by", BIG_ID, _fk("appeals", "decided_by", "experts")),
        sa.Column("decision_note", sa.Text()),
        sa.Column("gold_corrected", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("submission_id", name=op.f("uq_appeals_submission_id")),
        sa.CheckConstraint("kind IN ('review', 'gold')", name=op.f("ck_appeals_kind")),
        sa.CheckConstraint("status IN ('open', 'upheld', 'rejected')", name=op.f("ck_appeals_status")),
    )
    op.create_index(
        "ix_appeals_open",
        "appeals",
        ["created_at"],
        postgresql_where=sa.text("status = 'open'"),
        sqlite_where=sa.text("status = 'open'"),
    )
    op.create_index("ix_appeals_expert_id", "appeals", ["expert_id"])


def downgrade() -> None:
    op.drop_table("appeals")
    op.drop_table("exam_answers")
    op.drop_table("exam_attempts")
    op.drop_table("exam_items")
    op.drop_table("exams")
    op.drop_index("ix_expert_routes_best", table_name="expert_routes")
    op.create_index("ix_expert_routes_best", "expert_routes", ["skill", "language", "reliability", "expert_id"])
    op.drop_column("expert_routes", "level")
    op.drop_column("expert_skills", "level")
