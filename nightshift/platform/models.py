"""The data model. Invariants live here as keys and checks, so a re-run cannot duplicate work."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# JSONB on PostgreSQL (indexable, compact), plain JSON text on SQLite.
JSONType = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BATCH_STATUSES = ("ingested", "dispatched", "in_review", "passed", "delivering", "delivered", "failed")
ITEM_STATUSES = ("pending", "assigned", "rework", "adjudication", "passed", "delivered", "unassignable")
ROLES = ("annotate", "review", "adjudicate")
ASSIGNMENT_STATUSES = ("assigned", "submitted", "accepted", "rejected", "expired", "skipped")
TIERS = ("annotator", "reviewer", "adjudicator")
EXPERT_STATUSES = ("active", "paused", "banned")
MESSAGE_STATUSES = ("pending", "retrying", "delivered", "dead")
OPS_MESSAGE_STATUSES = ("pending", "sent", "dead")
LIVE_ADJUDICATION = "role = 'adjudicate' AND status IN ('assigned', 'submitted', 'accepted')"
OPEN_EXPERT = "CASE WHEN status = 'assigned' THEN expert_id END"
LIVE_ADJUDICATION_ITEM = f"CASE WHEN {LIVE_ADJUDICATION} THEN item_id END"
ASSIGNMENTS_FILLFACTOR = 50
ITEMS_FILLFACTOR = 50


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(moment: dt.datetime) -> dt.datetime:
    """SQLite hands timestamps back without their zone; every one we store is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSONType, list[Any]: JSONType}


class Timestamped:
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Client(Timestamped, Base):
    __tablename__ = "clients"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    # Where the whsec_ secret lives (an env var or a Prefect Secret), never the secret itself.
    webhook_secret_ref: Mapped[str | None] = mapped_column(String(200))
    # Set when the endpoint answered 410 Gone: its pages wait, none is lost, until ops enable it.
    webhook_disabled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    webhook_disabled_reason: Mapped[str | None] = mapped_column(Text)
    # Seconds to wait after each failed attempt, for this endpoint; NULL: the service's setting.
    webhook_retry_schedule: Mapped[list[Any] | None]
    slack_channel: Mapped[str | None] = mapped_column(String(200))


class Project(Timestamped, Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]]
    spec_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    spec_hash: Mapped[str] = mapped_column(String(64))


class ProjectSpecVersion(Timestamped, Base):
    """Every spec a project ever had, so a delivery can name the version it was made under."""

    __tablename__ = "project_spec_versions"
    __table_args__ = (UniqueConstraint("project_id", "version"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]]
    spec_hash: Mapped[str] = mapped_column(String(64))


class Batch(Timestamped, Base):
    __tablename__ = "batches"
    __table_args__ = (
        # The same file ingested twice is the same batch.
        UniqueConstraint("project_id", "source_checksum"),
        # What an item's foreign key points at: a batch together with its project.
        UniqueConstraint("id", "project_id"),
        CheckConstraint(_in("status", BATCH_STATUSES), name="status"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    source: Mapped[str] = mapped_column(String(2000))
    source_checksum: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="ingested", server_default="ingested")
    spec_version: Mapped[int] = mapped_column(Integer)
    source_format: Mapped[str] = mapped_column(String(12), default="jsonl", server_default="jsonl")
    # Set when every row of the file has been read: an unset value after a crash means "resume".
    ingest_completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # When the client expects it delivered, and when the last dispatch expects the work done.
    deadline_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    projected_finish_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Item(Timestamped, Base):
    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("project_id", "external_id"),
        # One key for both: an item's project is its batch's project, and bulk loads pay one
        # referential check per row instead of two (a third of the cost of copying items in).
        ForeignKeyConstraint(["batch_id", "project_id"], ["batches.id", "batches.project_id"]),
        CheckConstraint(_in("status", ITEM_STATUSES), name="status"),
        # Batch only, not (batch, status), and half of each page kept free, as for assignments:
        # every stage moves a batch's items on at once (assigned -> passed, -> rework,
        # -> delivered), and each new row version then stays on its page without an index entry
        # (HOT). A batch's items filtered by status are read through the batch.
        Index("ix_items_batch_id", "batch_id"),
        {"postgresql_with": {"fillfactor": ITEMS_FILLFACTOR}},
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(BigId)
    batch_id: Mapped[int] = mapped_column(BigId)
    external_id: Mapped[str] = mapped_column(String(200))
    content_hash: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]]
    is_gold: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    status: Mapped[str] = mapped_column(String(20), default="pending", server_default="pending")
    status_reason: Mapped[str | None] = mapped_column(Text)
    # How many accepted annotations this item needs; grows while its annotators disagree.
    overlap_target: Mapped[int | None] = mapped_column(Integer)


class GoldAnswer(Base):
    __tablename__ = "gold_answers"
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    answer: Mapped[dict[str, Any]]


class QuarantinedRow(Timestamped, Base):
    """A row that could not be accepted, with where it came from and why."""

    __tablename__ = "quarantined_rows"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"), index=True)
    source: Mapped[str] = mapped_column(String(2000))
    line_number: Mapped[int] = mapped_column(Integer)
    external_id: Mapped[str | None] = mapped_column(String(200))
    raw: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    # A problem with the file as a whole (empty, truncated), not with one row.
    file_level: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_item_id: Mapped[int | None] = mapped_column(ForeignKey("items.id"))
    __table_args__ = (UniqueConstraint("batch_id", "line_number"),)


class Expert(Timestamped, Base):
    __tablename__ = "experts"
    __table_args__ = (
        CheckConstraint(_in("tier", TIERS), name="tier"),
        CheckConstraint(_in("status", EXPERT_STATUSES), name="status"),
        CheckConstraint("capacity >= 0", name="capacity"),
        CheckConstraint("reliability >= 0 AND reliability <= 1", name="reliability"),
        CheckConstraint("hourly_rate >= 0", name="rate"),
        CheckConstraint("work_start_hour >= 0 AND work_start_hour < 24", name="work_start"),
        CheckConstraint("work_hours > 0 AND work_hours <= 24", name="work_hours"),
        # Dispatch reads these for hundreds of thousands of candidates: from this index alone
        # (PostgreSQL INCLUDE), not from the wide table's pages.
        Index(
            "ix_experts_routing",
            "id",
            postgresql_include=[
                "status",
                "timezone",
                "work_start_hour",
                "work_hours",
                "reliability",
                "capacity",
                "hourly_rate",
            ],
        ),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    handle: Mapped[str] = mapped_column(String(100), unique=True)
    # Personal data: stays inside Nightshift, never in a delivery or a message.
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    timezone: Mapped[str] = mapped_column(String(64))
    work_start_hour: Mapped[int] = mapped_column(Integer)
    work_hours: Mapped[int] = mapped_column(Integer)
    hourly_rate: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    tier: Mapped[str] = mapped_column(String(20))
    capacity: Mapped[int] = mapped_column(Integer)
    reliability: Mapped[float] = mapped_column(Float, default=0.7, server_default="0.7")
    status: Mapped[str] = mapped_column(String(10), default="active", server_default="active")
    # Assignments that expired unsubmitted: counted against the expert's reliability.
    missed_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ExpertSkill(Base):
    __tablename__ = "expert_skills"
    expert_id: Mapped[int] = mapped_column(ForeignKey("experts.id", ondelete="CASCADE"), primary_key=True)
    skill: Mapped[str] = mapped_column(String(64), primary_key=True)
    __table_args__ = (Index("ix_expert_skills_skill", "skill", "expert_id"),)


class ExpertLanguage(Base):
    __tablename__ = "expert_languages"
    expert_id: Mapped[int] = mapped_column(ForeignKey("experts.id", ondelete="CASCADE"), primary_key=True)
    language: Mapped[str] = mapped_column(String(16), primary_key=True)
    __table_args__ = (Index("ix_expert_languages_language", "language", "expert_id"),)


class ExpertRoute(Base):
    """Routing index: one row per (skill, language) an expert can take, best first.

    Derived from experts, their skills and languages (skill '*' stands for any), and kept in step
    by nightshift.experts.routing whenever those change. It lets dispatch read the few best candidates for
    a skill and language from a pool of millions by one index range scan.
    """

    __tablename__ = "expert_routes"
    skill: Mapped[str] = mapped_column(String(64), primary_key=True)
    language: Mapped[str] = mapped_column(String(16), primary_key=True)
    expert_id: Mapped[int] = mapped_column(ForeignKey("experts.id", ondelete="CASCADE"), primary_key=True)
    reliability: Mapped[float] = mapped_column(Float)
    __table_args__ = (
        Index("ix_expert_routes_best", "skill", "language", "reliability", "expert_id"),
        Index("ix_expert_routes_expert", "expert_id"),
    )


class Assignment(Timestamped, Base):
    __tablename__ = "assignments"
    # No index names `status`, and every page keeps half its room free: the review flips a whole
    # batch's annotations (submitted -> accepted) at once, and PostgreSQL can then write each new
    # row version beside the old one without touching an index (a HOT update). With status in
    # three indexes, accepting 300,000 annotations took 8-9 s; without, under 1 s. What the
    # indexes need of the status is held in generated columns that the review's flip leaves as
    # they were (NULL before and after).
    __table_args__ = (
        # One assignment per item, expert and role: a re-run of dispatch cannot double up.
        UniqueConstraint("item_id", "expert_id", "role"),
        CheckConstraint(_in("role", ROLES), name="role"),
        CheckConstraint(_in("status", ASSIGNMENT_STATUSES), name="status"),
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
        CheckConstraint(_in("decision", ("approve", "reject", "correct")), name="decision"),
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


class Delivery(Timestamped, Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("batch_id", "version"),
        CheckConstraint(_in("status", ("pending", "delivered", "dead")), name="status"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    status: Mapped[str] = mapped_column(String(10), default="pending", server_default="pending")
    record_count: Mapped[int] = mapped_column(Integer)
    file_path: Mapped[str] = mapped_column(String(2000))
    file_sha256: Mapped[str] = mapped_column(String(64))
    page_count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # Why this version exists: the first delivery, a redelivery asked for, a re-aggregation.
    reason: Mapped[str] = mapped_column(Text, default="first delivery", server_default="first delivery")
    manifest: Mapped[dict[str, Any]]


class DeliveryMessage(Timestamped, Base):
    """The outbox: one webhook message (a page of records) to send until it lands or dies."""

    __tablename__ = "delivery_messages"
    __table_args__ = (
        UniqueConstraint("delivery_id", "page"),
        CheckConstraint(_in("status", MESSAGE_STATUSES), name="status"),
        Index("ix_delivery_messages_due", "status", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"))
    page: Mapped[int] = mapped_column(Integer)
    # Stable across retries: the receiver's idempotency key.
    webhook_id: Mapped[str] = mapped_column(String(64), unique=True)
    # The page's records as a JSON array; the body around it is put together when sent.
    records: Mapped[str] = mapped_column(Text)
    record_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    status: Mapped[str] = mapped_column(String(10), default="pending", server_default="pending")
    attempt_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_error: Mapped[str | None] = mapped_column(Text)


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("delivery_messages.id"), index=True)
    attempted_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)


PAYOUT_KINDS = ("time", "bonus", "deduction", "correction")


class PayoutEntry(Timestamped, Base):
    """Append-only ledger: a correction is a new entry, never an edit (a trigger refuses UPDATE and
    DELETE). entry_key names what an entry pays for, so paying a period twice pays nothing twice."""

    __tablename__ = "payout_entries"
    __table_args__ = (
        UniqueConstraint("assignment_id", "kind"),
        CheckConstraint(_in("kind", PAYOUT_KINDS), name="kind"),
        Index("ix_payout_entries_period", "period", "expert_id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    entry_key: Mapped[str] = mapped_column(String(200), unique=True)
    expert_id: Mapped[int] = mapped_column(ForeignKey("experts.id"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("assignments.id"))
    kind: Mapped[str] = mapped_column(String(12))
    minutes: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("0"), server_default="0")
    rate: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("0"), server_default="0")
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3), default="USD", server_default="USD")
    period: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)


class OpsMessage(Timestamped, Base):
    """The ops notification outbox: kept until Slack has taken it, so Slack being down loses
    nothing and fails nothing; bursts of one kind to one channel go out as one digest."""

    __tablename__ = "ops_messages"
    __table_args__ = (
        CheckConstraint(_in("status", OPS_MESSAGE_STATUSES), name="status"),
        Index("ix_ops_messages_due", "status", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))
    # The event's identity: the same event reported again (a re-run) is said once.
    event_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    title: Mapped[str] = mapped_column(Text)
    lines: Mapped[list[Any]]
    link: Mapped[list[Any] | None]
    status: Mapped[str] = mapped_column(String(10), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)


API_KEY_KINDS = ("expert", "client")


class ApiKey(Timestamped, Base):
    """A personal token of an expert or an API key of a client. Only its SHA-256 is kept: the key
    is random (256 bits), so a fast hash is safe and lets every request be checked by one lookup."""

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint(_in("kind", API_KEY_KINDS), name="kind"),
        CheckConstraint(
            "(kind = 'expert' AND expert_id IS NOT NULL AND client_id IS NULL) OR "
            "(kind = 'client' AND client_id IS NOT NULL AND expert_id IS NULL)",
            name="owner",
        ),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    expert_id: Mapped[int | None] = mapped_column(ForeignKey("experts.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters, to tell keys apart in listings; never enough to use.
    prefix: Mapped[str] = mapped_column(String(16))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class AuditLog(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[int] = mapped_column(BigId)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(100))
    detail: Mapped[dict[str, Any] | None]
    __table_args__ = (Index("ix_audit_log_entity", "entity", "entity_id"),)
