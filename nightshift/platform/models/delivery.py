"""Deliveries to clients, their webhook outbox pages and each attempt to send one."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from nightshift.platform.models.base import MESSAGE_STATUSES, Base, BigId, Timestamped, sql_in


class Delivery(Timestamped, Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("batch_id", "version"),
        CheckConstraint(sql_in("status", ("pending", "delivered", "dead")), name="status"),
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
        CheckConstraint(sql_in("status", MESSAGE_STATUSES), name="status"),
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


class RecordVerdict(Base):
    """A client's verdict on one delivered record of one version: accepted (by the client, or by
    the window closing), or rejected with a reason, which sends the item back to adjudication; the
    version that carries its rework is noted once delivered."""

    __tablename__ = "record_verdicts"
    __table_args__ = (
        UniqueConstraint("item_id", "version"),
        CheckConstraint(sql_in("verdict", ("accepted", "rejected")), name="verdict"),
        Index("ix_record_verdicts_batch_id", "batch_id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    version: Mapped[int] = mapped_column(Integer)
    verdict: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(Text)
    # client:<slug> for the client's own verdicts, window for those the window's end gave.
    decided_by: Mapped[str] = mapped_column(String(100))
    decided_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    redelivered_version: Mapped[int | None] = mapped_column(Integer)
