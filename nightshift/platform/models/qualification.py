"""Qualification and the expert's recourse: exams and training sets, their attempts and answers,
and appeals against a reviewer's correction or a gold answer."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from nightshift.platform.models.base import Base, BigId, Timestamped, sql_in

EXAM_KINDS = ("exam", "training")
ATTEMPT_STATUSES = ("open", "pending_review", "passed", "failed")
APPEAL_KINDS = ("review", "gold")
APPEAL_STATUSES = ("open", "upheld", "rejected")


class Exam(Timestamped, Base):
    """A set of items with known answers for one skill: an exam grants the skill at `level` to
    whoever scores `pass_mark`; a training set shows each answer's explanation and grants nothing."""

    __tablename__ = "exams"
    __table_args__ = (
        CheckConstraint(sql_in("kind", EXAM_KINDS), name="kind"),
        CheckConstraint("pass_mark >= 0 AND pass_mark <= 1", name="pass_mark"),
        CheckConstraint("level >= 1 AND level <= 5", name="level"),
        CheckConstraint("max_attempts >= 1", name="max_attempts"),
        CheckConstraint("cooldown_hours >= 0", name="cooldown"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))
    skill: Mapped[str] = mapped_column(String(64), index=True)
    level: Mapped[int] = mapped_column(Integer)
    pass_mark: Mapped[float] = mapped_column(Float)
    cooldown_hours: Mapped[float] = mapped_column(Float)
    max_attempts: Mapped[int] = mapped_column(Integer)
    instructions: Mapped[str] = mapped_column(Text)
    # The answer fields, as a project spec's labels.
    labels: Mapped[list[Any]]


class ExamItem(Base):
    __tablename__ = "exam_items"
    __table_args__ = (UniqueConstraint("exam_id", "position"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    exam_id: Mapped[int] = mapped_column(ForeignKey("exams.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    content: Mapped[dict[str, Any]]
    answer: Mapped[dict[str, Any]]
    explanation: Mapped[str] = mapped_column(Text)


class ExamAttempt(Base):
    __tablename__ = "exam_attempts"
    __table_args__ = (
        # Two starts at once cannot both take the same attempt number, so the retake limit holds.
        UniqueConstraint("exam_id", "expert_id", "attempt_no"),
        CheckConstraint(sql_in("status", ATTEMPT_STATUSES), name="status"),
        Index("ix_exam_attempts_expert_id", "expert_id", "exam_id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    exam_id: Mapped[int] = mapped_column(ForeignKey("exams.id", ondelete="CASCADE"))
    expert_id: Mapped[int] = mapped_column(ForeignKey("experts.id"))
    attempt_no: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="open", server_default="open")
    score: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class ExamAnswer(Base):
    """One answer of an attempt; `correct` is NULL until a reviewer grades a free-text answer."""

    __tablename__ = "exam_answers"
    attempt_id: Mapped[int] = mapped_column(ForeignKey("exam_attempts.id", ondelete="CASCADE"), primary_key=True)
    exam_item_id: Mapped[int] = mapped_column(ForeignKey("exam_items.id", ondelete="CASCADE"), primary_key=True)
    answer: Mapped[dict[str, Any]]
    correct: Mapped[bool | None] = mapped_column(Boolean)
    graded_by: Mapped[str | None] = mapped_column(String(100))
    answered_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class Appeal(Timestamped, Base):
    """An expert's dispute of a reviewer's verdict or a gold answer on one of their annotations:
    one per annotation (the unique key), decided by an adjudicator who is neither its author nor
    the reviewer."""

    __tablename__ = "appeals"
    __table_args__ = (
        CheckConstraint(sql_in("kind", APPEAL_KINDS), name="kind"),
        CheckConstraint(sql_in("status", APPEAL_STATUSES), name="status"),
        Index(
            "ix_appeals_open",
            "created_at",
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
        Index("ix_appeals_expert_id", "expert_id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), unique=True)
    expert_id: Mapped[int] = mapped_column(ForeignKey("experts.id"))
    kind: Mapped[str] = mapped_column(String(10))
    review_id: Mapped[int | None] = mapped_column(ForeignKey("reviews.id"))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="open", server_default="open")
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("experts.id"))
    decision_note: Mapped[str | None] = mapped_column(Text)
    gold_corrected: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
