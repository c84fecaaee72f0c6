"""The append-only ledger of expert pay."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from nightshift.platform.models.base import Base, BigId, Timestamped, sql_in

PAYOUT_KINDS = ("time", "bonus", "deduction", "correction")


class PayoutEntry(Timestamped, Base):
    """Append-only ledger: a correction is a new entry, never an edit (a trigger refuses UPDATE and
    DELETE). entry_key names what an entry pays for, so paying a period twice pays nothing twice."""

    __tablename__ = "payout_entries"
    __table_args__ = (
        UniqueConstraint("assignment_id", "kind"),
        CheckConstraint(sql_in("kind", PAYOUT_KINDS), name="kind"),
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
