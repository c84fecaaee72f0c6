"""The model's foundation: the declarative base, column types, naming, status vocabularies, clocks."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, MetaData, func
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
LIVE_ADJUDICATION = "role = 'adjudicate' AND status IN ('assigned', 'submitted')"
OPEN_EXPERT = "CASE WHEN status = 'assigned' THEN expert_id END"
LIVE_ADJUDICATION_ITEM = f"CASE WHEN {LIVE_ADJUDICATION} THEN item_id END"
ASSIGNMENTS_FILLFACTOR = 50
ITEMS_FILLFACTOR = 50


def sql_in(column: str, values: tuple[str, ...]) -> str:
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
