"""Clients, their projects and spec versions, and the batches and items of work they send."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from nightshift.platform.models.base import (
    BATCH_STATUSES,
    ITEM_STATUSES,
    ITEMS_FILLFACTOR,
    Base,
    BigId,
    Timestamped,
    sql_in,
)


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
    # Days after a batch's last delivery when its content is purged; NULL: kept.
    retention_days: Mapped[int | None] = mapped_column(Integer)


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
        CheckConstraint(sql_in("status", BATCH_STATUSES), name="status"),
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
    # When its content was purged under the client's retention (ids, hashes and the audit stay).
    purged_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Item(Timestamped, Base):
    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("project_id", "external_id"),
        # One key for both: an item's project is its batch's project. On PostgreSQL the same rule
        # is held by statement triggers instead (migration 0015): a bulk load pays one set-based
        # check per COPY, not a referential query per row.
        ForeignKeyConstraint(["batch_id", "project_id"], ["batches.id", "batches.project_id"]),
        CheckConstraint(sql_in("status", ITEM_STATUSES), name="status"),
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
    # Personal data found at ingest ({"action": ..., "kinds": {kind: count}}), never the values.
    personal_data: Mapped[dict[str, Any] | None]


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


class BudgetLimit(Timestamped, Base):
    """A budget ops set above the spec's (a raise), for a batch or (batch_id NULL) its whole
    project: the latest row of a scope is its limit; earlier ones stay as the raises' history."""

    __tablename__ = "budget_limits"
    __table_args__ = (
        CheckConstraint("usd IS NULL OR usd >= 0", name="usd"),
        CheckConstraint("hours IS NULL OR hours >= 0", name="hours"),
        Index("ix_budget_limits_scope", "project_id", "batch_id", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"))
    usd: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    hours: Mapped[Decimal | None] = mapped_column(Numeric(12, 1))
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
