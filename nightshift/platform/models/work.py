"""The work done on items: assignments, submissions and drafts, reviews, results and gate runs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from nightshift.platform.models.base import (
    ASSIGNMENT_STATUSES,
    ASSIGNMENTS_FILLFACTOR,
    LIVE_ADJUDICATION_ITEM,
    OPEN_EXPERT,
    ROLES,
    Base,
    BigId,
    Timestamped,
    sql_in,
)


class Assignment(Timestamped, Base):
    __tablename__ = "assignments"
    # No index names `status`, and every page keeps half its room free: the review flips a whole
    # batch's annotations (submitted -> accepted) at once, and PostgreSQL can then write each new
    # row version beside the old one without touching an index (a HOT update), where status in
    # three indexes made every flip write three index entries too. What the
    # indexes need of the status is held in generated columns that the review's flip leaves as
    # they were (NULL before and after).
    __table_args__ = (
        # One assignment per item, expert and role: a re-run of dispatch cannot double up.
        UniqueConstraint("item_id", "expert_id", "role"),
        CheckConstraint(sql_in("role", ROLES), name="role"),
        CheckConstraint(sql_in("status", ASSIGNMENT_STATUSES), name="status"),
        Index("ix_assignments_expert_id", "expert_id"),
        # An expert's open work (their queue, their load) and expiry look only at open assignments:
        # small partial indexes, however long the history grows.
        Index(
            "ix_assignments_open_expert_id",
            "open_expert_id",
            "due_at",
            postgresql_where=text("open_expert_id IS NOT NULL"),
            sqlite_where=text("open_expert_id IS NOT NULL"),
        ),
        Index(
            "ix_assignments_open_due",
            "due_at",
            postgresql_where=text("open_expert_id IS NOT NULL"),
            sqlite_where=text("open_expert_id IS NOT NULL"),
        ),
        # An adjudicator's decision is final: two adjudicators claiming at once cannot both hold one.
        Index("ix_assignments_one_live_adjudication", "live_adjudication_item_id", unique=True),
        {"postgresql_with": {"fillfactor": ASSIGNMENTS_FILLFACTOR}},
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    expert_id: Mapped[int] = mapped_column(ForeignKey("experts.id"))
    role: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(12), default="assigned", server_default="assigned")
    round: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    due_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    status_reason: Mapped[str | None] = mapped_column(Text)
    # Server-side clock only: when the expert first opened the task and when the answer arrived.
    # Billing and the time-on-task gate read worked_seconds, never a time the client claims.
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    submitted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    worked_seconds: Mapped[int | None] = mapped_column(Integer)
    # False for work the client does not pay for: an adjudication of a record the client rejected.
    billable: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # A review assignment names the annotation it judges; one open review per annotation.
    subject_submission_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id", use_alter=True), unique=True)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    # The expert while the assignment is open (status 'assigned'), else NULL; kept by the database.
    open_expert_id: Mapped[int | None] = mapped_column(BigInteger, Computed(OPEN_EXPERT, persisted=True))
    # The item while this is a live adjudication (LIVE_ADJUDICATION), else NULL: unique, so one per item.
    live_adjudication_item_id: Mapped[int | None] = mapped_column(
        BigInteger, Computed(LIVE_ADJUDICATION_ITEM, persisted=True)
    )


class Submission(Timestamped, Base):
    __tablename__ = "submissions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id"), unique=True)
    answer: Mapped[dict[str, Any]]
    time_on_task_seconds: Mapped[int] = mapped_column(Integer)
    __table_args__ = (CheckConstraint("time_on_task_seconds >= 0", name="time_on_task"),)


class AssignmentDraft(Base):
    """An expert's unsubmitted answer, saved as they go; never gated, never delivered."""

    __tablename__ = "assignment_drafts"
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), primary_key=True)
    answer: Mapped[dict[str, Any]]
    saved_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class Review(Timestamped, Base):
    __tablename__ = "reviews"
    __table_args__ = (
        UniqueConstraint("submission_id", "reviewer_assignment_id"),
        # A delivery's lineage finds an item's reviews through its review assignments.
        Index("ix_reviews_reviewer_assignment_id", "reviewer_assignment_id"),
        CheckConstraint(sql_in("decision", ("approve", "reject", "correct")), name="decision"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"))
    reviewer_assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id"))
    decision: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(Text)
    corrected_answer: Mapped[dict[str, Any] | None]


class ItemResult(Timestamped, Base):
    """The final, aggregated answer of an item, with how it was reached."""

    __tablename__ = "item_results"
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True)
    answer: Mapped[dict[str, Any]]
    method: Mapped[dict[str, Any]]
    agreement: Mapped[float] = mapped_column(Float)
    submission_ids: Mapped[list[Any]]


class GateRun(Timestamped, Base):
    __tablename__ = "gate_runs"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    gate: Mapped[str] = mapped_column(String(40))
    success: Mapped[bool] = mapped_column(Boolean)
    evaluated: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    thresholds: Mapped[dict[str, Any]]
    # Per expectation: its name, success and the ids of the rows that failed it.
    results: Mapped[list[Any]]
    # The run's page in the Great Expectations Data Docs site.
    docs_url: Mapped[str | None] = mapped_column(Text)


SIGNAL_KINDS = ("pasted", "rushed", "echo", "copy", "near_duplicate", "same_sequence", "risk")


class SubmissionSignal(Base):
    """A sign of low effort or copying found on a submission, with its strength (0-1) and the
    evidence behind it; kind 'risk' combines a submission's signals (review.signals)."""

    __tablename__ = "submission_signals"
    __table_args__ = (
        CheckConstraint(sql_in("kind", SIGNAL_KINDS), name="kind"),
        CheckConstraint("score >= 0 AND score <= 1", name="score"),
    )
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    score: Mapped[float] = mapped_column(Float)
    evidence: Mapped[dict[str, Any]]
    found_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
