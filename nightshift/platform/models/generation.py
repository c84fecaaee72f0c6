"""What the project's models answered: one row per item, model set-up and take."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from nightshift.platform.models.base import Base, BigId, Timestamped, sql_in

RESPONSE_STATUSES = ("ok", "failed")


class ModelResponse(Timestamped, Base):
    """A model's response to an item's prompt, or why there is none (failures are data: a re-run
    asks again for those, and only those).

    model_key hashes everything that shapes the answer (endpoint, model, parameters, system
    prompt, the fields sent): the same item is never sent twice under one key unless a run is
    forced, which adds the next take and keeps the earlier ones (work may have used them).
    """

    __tablename__ = "model_responses"
    __table_args__ = (
        UniqueConstraint("item_id", "model_key", "take"),
        CheckConstraint(sql_in("status", RESPONSE_STATUSES), name="status"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    endpoint: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(200))
    model_key: Mapped[str] = mapped_column(String(64))
    take: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    parameters: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(10))
    content: Mapped[str | None] = mapped_column(Text)
    finish_reason: Mapped[str | None] = mapped_column(String(32))
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    # The failure's kind (an exception class, an HTTP status), never a response body or a URL.
    error: Mapped[str | None] = mapped_column(String(200))
    # Requests sent for this row over every run, the client's own retries included.
    attempts: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


RUN_STATUSES = ("running", "ok", "failed")


class ModelRun(Timestamped, Base):
    """An expert's run of a rewritten prompt against one of the project's models, from the
    workbench: asked while they work (a row first, 'running', so the per-expert limit counts it
    before the model is called), and kept whether or not their answer cites it."""

    __tablename__ = "model_runs"
    __table_args__ = (
        CheckConstraint(sql_in("status", RUN_STATUSES), name="status"),
        Index("ix_model_runs_expert_created", "expert_id", "created_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), index=True)
    expert_id: Mapped[int] = mapped_column(ForeignKey("experts.id"))
    label: Mapped[str] = mapped_column(String(64))
    endpoint: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(200))
    prompt: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="running", server_default="running")
    content: Mapped[str | None] = mapped_column(Text)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(200))
