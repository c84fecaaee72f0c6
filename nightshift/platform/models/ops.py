"""What operations keep: the ops notification outbox, API keys, the audit log and the access log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from nightshift.platform.models.base import OPS_MESSAGE_STATUSES, Base, BigId, Timestamped, sql_in


class OpsMessage(Timestamped, Base):
    """The ops notification outbox: kept until Slack has taken it, so Slack being down loses
    nothing and fails nothing; bursts of one kind to one channel go out as one digest."""

    __tablename__ = "ops_messages"
    __table_args__ = (
        CheckConstraint(sql_in("status", OPS_MESSAGE_STATUSES), name="status"),
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
        CheckConstraint(sql_in("kind", API_KEY_KINDS), name="kind"),
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


ACCESS_ACTORS = ("expert", "ops", "client")


class AccessLog(Base):
    """Who read which item's content: an expert opening a task (API or workbench), ops showing a
    quarantined row, a client receiving a delivery (one row per delivered version, for its batch).
    Kept whatever the retention: it holds ids, never content."""

    __tablename__ = "access_log"
    __table_args__ = (
        CheckConstraint(sql_in("actor_kind", ACCESS_ACTORS), name="actor_kind"),
        Index("ix_access_log_item_id", "item_id"),
        Index("ix_access_log_at", "at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor_kind: Mapped[str] = mapped_column(String(10))
    # expert: the expert's id; ops: the account that ran the command; client: the client's slug.
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    via: Mapped[str] = mapped_column(String(20))
    batch_id: Mapped[int | None] = mapped_column(BigId)
    item_id: Mapped[int | None] = mapped_column(BigId)
    assignment_id: Mapped[int | None] = mapped_column(BigId)
    detail: Mapped[dict[str, Any] | None]
