"""What the ledger says: an expert's statement for a period, and the payments provider's CSV."""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nightshift.payouts.ledger import CURRENCY, money
from nightshift.platform.errors import NightshiftError
from nightshift.platform.models import Expert, PayoutEntry, Project


@dataclass
class Statement:
    expert: str
    period: str
    currency: str
    lines: list[dict[str, Any]]
    totals: dict[str, str]
    total: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def statement(session: Session, handle: str, period_label: str) -> Statement:
    """What an expert is paid for a period, line by line; no other expert's data."""
    expert_id = expert_id_of(session, handle)
    lines = []
    totals: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
    for entry, project in session.execute(
        select(PayoutEntry, Project.slug)
        .join(Project, Project.id == PayoutEntry.project_id)
        .where(PayoutEntry.expert_id == expert_id, PayoutEntry.period == period_label)
        .order_by(PayoutEntry.id)
    ):
        totals[entry.kind] += entry.amount
        lines.append(
            {
                "kind": entry.kind,
                "project": project,
                "assignment_id": entry.assignment_id,
                "minutes": str(entry.minutes),
                "rate": str(entry.rate),
                "amount": str(entry.amount),
                "note": entry.note,
            }
        )
    total = sum(totals.values(), Decimal("0.00"))
    return Statement(handle, period_label, CURRENCY, lines, {k: str(v) for k, v in sorted(totals.items())}, str(total))


CSV_COLUMNS = ("period", "payee_id", "payee_email", "currency", "amount", "billed_minutes", "entries")


def export_csv(session: Session, period_label: str, folder: Path) -> tuple[Path, int, Decimal]:
    """The payments provider's file for a period: one row per expert, written whole or not at all."""
    rows = session.execute(
        select(
            Expert.handle,
            Expert.email,
            func.sum(PayoutEntry.amount),
            func.sum(PayoutEntry.minutes),
            func.count(),
        )
        .join(Expert, Expert.id == PayoutEntry.expert_id)
        .where(PayoutEntry.period == period_label)
        .group_by(Expert.handle, Expert.email)
        .order_by(Expert.handle)
    ).all()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"payouts-{period_label}.csv"
    partial = path.with_suffix(".csv.partial")
    total = Decimal("0.00")
    with partial.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for handle, email, amount, minutes, count in rows:
            total += Decimal(amount)
            writer.writerow(
                [period_label, handle, email, CURRENCY, money(Decimal(amount)), money(Decimal(minutes)), count]
            )
    os.replace(partial, path)
    return path, len(rows), total


def expert_id_of(session: Session, handle: str) -> int:
    expert_id = session.scalar(select(Expert.id).where(Expert.handle == handle))
    if expert_id is None:
        raise NightshiftError(f"no expert with handle {handle!r}")
    return expert_id
