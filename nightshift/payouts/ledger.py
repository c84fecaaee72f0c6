"""Expert pay: billable time, bonuses and deductions into an append-only ledger, per period.

Money is Decimal throughout and rounded to the cent once per ledger line (half up), so every line
of a statement can be checked by hand: minutes * rate / 60 = amount. Each entry carries an
entry_key naming what it pays for (an assignment's time, an expert's bonus for a period, a
correction's reference); the unique key makes paying a period twice pay nothing twice.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from nightshift.platform.errors import NightshiftError
from nightshift.platform.models import Assignment, Batch, Expert, Item, PayoutEntry, Project
from nightshift.platform.sql import insert_ignoring_conflicts, insert_returning_new
from nightshift.projects.registry import project_spec
from nightshift.projects.spec import Bonus, ProjectBody
from nightshift.review.gold import gold_record

CENT = Decimal("0.01")
CURRENCY = "USD"
_CHUNK = 10_000


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Period:
    """A pay period: an ISO week (2026-W47) or a month (2026-11), from midnight to midnight in
    the payroll's time zone; start and end are held in UTC, end exclusive."""

    label: str
    timezone: str
    start: dt.datetime
    end: dt.datetime

    @classmethod
    def parse(cls, label: str, timezone: str = "UTC") -> Period:
        zone = _zone(timezone)
        if week := re.fullmatch(r"(\d{4})-W(\d{2})", label):
            try:
                first = dt.date.fromisocalendar(int(week[1]), int(week[2]), 1)
            except ValueError:
                raise NightshiftError(f"period {label!r}: no such ISO week") from None
            after = first + dt.timedelta(days=7)
        elif month := re.fullmatch(r"(\d{4})-(\d{2})", label):
            year, number = int(month[1]), int(month[2])
            if not 1 <= number <= 12:
                raise NightshiftError(f"period {label!r}: no such month")
            first = dt.date(year, number, 1)
            after = dt.date(year + number // 12, number % 12 + 1, 1)
        else:
            raise NightshiftError(f"period {label!r}: expected an ISO week like 2026-W47 or a month like 2026-11")
        return cls(label, timezone, _midnight(first, zone), _midnight(after, zone))

    @classmethod
    def week_of(cls, moment: dt.datetime, timezone: str = "UTC") -> Period:
        year, week, _ = moment.astimezone(_zone(timezone)).date().isocalendar()
        return cls.parse(f"{year}-W{week:02d}", timezone)

    @classmethod
    def last_complete_week(cls, now: dt.datetime, timezone: str = "UTC") -> Period:
        return cls.week_of(now - dt.timedelta(days=7), timezone)

    def closed(self, now: dt.datetime) -> bool:
        return now >= self.end


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise NightshiftError(f"unknown time zone {name!r}") from None


def _midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), zone).astimezone(dt.UTC)


def time_pay(
    seconds: int, hourly_rate: Decimal, multiplier: Decimal, cap_minutes: float
) -> tuple[Decimal, Decimal, Decimal]:
    """(billed minutes, rate per hour, amount) for one task: time capped, each figure to the cent."""
    minutes = money(min(Decimal(seconds) / 60, Decimal(str(cap_minutes))))
    rate = money(hourly_rate * multiplier)
    return minutes, rate, money(minutes * rate / 60)


@dataclass
class PayoutReport:
    period: str
    timezone: str
    closed: bool
    time_entries: int = 0
    deductions: int = 0
    bonuses: int = 0
    paid_now: Decimal = Decimal("0.00")
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"paid_now": str(self.paid_now)}


class _Specs:
    """Each project's spec read once per run."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._cache: dict[int, ProjectBody] = {}

    def __call__(self, project_id: int) -> ProjectBody:
        if project_id not in self._cache:
            self._cache[project_id] = project_spec(self._session, project_id).project
        return self._cache[project_id]


def pay_period(session: Session, period: Period, now: dt.datetime) -> PayoutReport:
    """Write the period's ledger entries that are not written yet; safe to run again at any time.

    Time is paid for work submitted in the period. Deductions follow the project's policy for
    work rejected since it was paid, and land in the period that finds them. Bonuses are judged
    only once the period has ended, when its evidence is complete.
    """
    report = PayoutReport(period.label, period.timezone, period.closed(now))
    specs = _Specs(session)
    for rows in _chunks(_time_entries(session, period, specs)):
        report.time_entries += _write(session, rows, report)
    report.deductions = _write(session, list(_deductions(session, period, specs)), report)
    if report.closed:
        report.bonuses = _write(session, list(_bonuses(session, period, specs)), report)
    else:
        report.notes.append(f"period {period.label} is still open: bonuses are judged after it ends")
    return report


def _write(session: Session, rows: list[dict[str, Any]], report: PayoutReport) -> int:
    """Insert the entries not in the ledger yet; returns how many were, adding up what they pay."""
    written = insert_returning_new(session, PayoutEntry, rows, ["entry_key"], ("amount",))
    report.paid_now += sum((Decimal(r.amount) for r in written), Decimal("0.00"))
    return len(written)


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == _CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _entry(
    kind: str, key: str, expert_id: int, project_id: int, period: Period, amount: Decimal, **more: Any
) -> dict[str, Any]:
    return {
        "entry_key": key,
        "kind": kind,
        "expert_id": expert_id,
        "project_id": project_id,
        "assignment_id": more.get("assignment_id"),
        "minutes": more.get("minutes", Decimal("0")),
        "rate": more.get("rate", Decimal("0")),
        "amount": amount,
        "currency": CURRENCY,
        "period": period.label,
        "note": more.get("note"),
    }


def _time_entries(session: Session, period: Period, specs: _Specs) -> Iterator[dict[str, Any]]:
    paid = select(PayoutEntry.assignment_id).where(PayoutEntry.kind == "time", PayoutEntry.assignment_id.is_not(None))
    query = (
        select(
            Assignment.id,
            Assignment.expert_id,
            Item.project_id,
            Assignment.role,
            Assignment.worked_seconds,
            Expert.hourly_rate,
        )
        .join(Item, Item.id == Assignment.item_id)
        .join(Expert, Expert.id == Assignment.expert_id)
        .where(
            Assignment.submitted_at >= period.start,
            Assignment.submitted_at < period.end,
            Assignment.worked_seconds > 0,
            Assignment.id.not_in(paid),
        )
        .order_by(Assignment.id)
        .execution_options(yield_per=_CHUNK)
    )
    for assignment_id, expert_id, project_id, role, worked, hourly_rate in session.execute(query):
        seconds = int(worked or 0)
        policy = specs(project_id).payouts
        minutes, rate, amount = time_pay(seconds, hourly_rate, policy.role_rates.of(role), policy.max_minutes_per_task)
        capped = " (capped)" if Decimal(seconds) / 60 > minutes else ""
        yield _entry(
            "time",
            f"time:{assignment_id}",
            expert_id,
            project_id,
            period,
            amount,
            assignment_id=assignment_id,
            minutes=minutes,
            rate=rate,
            note=f"{role} {seconds} s on task{capped}",
        )


def _deductions(session: Session, period: Period, specs: _Specs) -> Iterator[dict[str, Any]]:
    deducted = select(PayoutEntry.assignment_id).where(
        PayoutEntry.kind == "deduction", PayoutEntry.assignment_id.is_not(None)
    )
    query = (
        select(
            PayoutEntry.assignment_id,
            PayoutEntry.expert_id,
            PayoutEntry.project_id,
            PayoutEntry.amount,
            Assignment.status_reason,
        )
        .join(Assignment, Assignment.id == PayoutEntry.assignment_id)
        .where(
            PayoutEntry.kind == "time",
            Assignment.status == "rejected",
            PayoutEntry.assignment_id.not_in(deducted),
        )
        .order_by(PayoutEntry.assignment_id)
    )
    for assignment_id, expert_id, project_id, paid, reason in session.execute(query):
        assert assignment_id is not None
        share = specs(project_id).payouts.rejected_pay_share
        amount = -money(Decimal(paid) * (1 - share))
        if amount:
            yield _entry(
                "deduction",
                f"deduction:{assignment_id}",
                expert_id,
                project_id,
                period,
                amount,
                assignment_id=assignment_id,
                note=f"rejected: {reason or 'no reason given'}; {share:%} of the time pay kept",
            )


def _bonuses(session: Session, period: Period, specs: _Specs) -> Iterator[dict[str, Any]]:
    earned = (
        select(PayoutEntry.expert_id, PayoutEntry.project_id, func.sum(PayoutEntry.amount))
        .where(PayoutEntry.period == period.label, PayoutEntry.kind.in_(("time", "deduction")))
        .group_by(PayoutEntry.expert_id, PayoutEntry.project_id)
    )
    base: dict[int, dict[int, Decimal]] = defaultdict(dict)
    for expert_id, project_id, total in session.execute(earned):
        if total and Decimal(total) > 0 and specs(project_id).payouts.bonuses:
            base[project_id][expert_id] = Decimal(total)
    for project_id, experts in base.items():
        for bonus in specs(project_id).payouts.bonuses:
            rates = (_gold_accuracy if bonus.rule == "gold_accuracy" else _on_time_rate)(
                session, project_id, list(experts), period, specs(project_id)
            )
            for expert_id, (hits, seen) in rates.items():
                if seen < bonus.min_count or hits / seen < bonus.min:
                    continue
                amount = money(experts[expert_id] * bonus.percent / 100)
                yield _entry(
                    "bonus",
                    f"bonus:{bonus.rule}:{expert_id}:{project_id}:{period.label}",
                    expert_id,
                    project_id,
                    period,
                    amount,
                    note=_bonus_note(bonus, hits, seen, experts[expert_id]),
                )


def _bonus_note(bonus: Bonus, hits: int, seen: int, base: Decimal) -> str:
    what = bonus.rule.replace("_", " ")
    return f"{what} {hits}/{seen} = {hits / seen:.1%} ≥ {bonus.min:.0%}: {bonus.percent}% of {base}"


def _gold_accuracy(
    session: Session, project_id: int, expert_ids: list[int], period: Period, project: ProjectBody
) -> dict[int, tuple[int, int]]:
    record = gold_record(
        session,
        project_id,
        project,
        Assignment.expert_id.in_(expert_ids),
        Assignment.submitted_at >= period.start,
        Assignment.submitted_at < period.end,
    )
    return {expert_id: (hits, seen) for expert_id, (seen, hits) in record.items()}


def _on_time_rate(
    session: Session, project_id: int, expert_ids: list[int], period: Period, _project: ProjectBody
) -> dict[int, tuple[int, int]]:
    on_time = case(
        (and_(Assignment.submitted_at.is_not(None), Assignment.submitted_at <= Assignment.due_at), 1), else_=0
    )
    rows = session.execute(
        select(Assignment.expert_id, func.sum(on_time), func.count())
        .join(Item, Item.id == Assignment.item_id)
        .where(
            Item.project_id == project_id,
            Assignment.expert_id.in_(expert_ids),
            Assignment.due_at >= period.start,
            Assignment.due_at < period.end,
            Assignment.status != "skipped",
        )
        .group_by(Assignment.expert_id)
    )
    return {expert_id: (int(hits or 0), int(seen)) for expert_id, hits, seen in rows}


def add_correction(
    session: Session, expert_id: int, project_id: int, amount: Decimal, reason: str, reference: str, period: Period
) -> bool:
    """A correction is a new entry, never an edit; its reference makes asking twice a no-op."""
    if not reason.strip():
        raise NightshiftError("a correction needs a reason")
    if not amount.is_finite() or money(amount) != amount or not amount:
        raise NightshiftError(f"correction amount {amount}: give a non-zero amount in whole cents")
    entry = _entry("correction", f"correction:{reference}", expert_id, project_id, period, amount, note=reason)
    return bool(insert_ignoring_conflicts(session, PayoutEntry, [entry], ["entry_key"]))


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


def batch_costs(session: Session, batch_ids: Sequence[int]) -> dict[int, Decimal]:
    """Each batch's cost so far, to the cent as its ledger pays it: submitted time, capped per task,
    at each expert's rate times the role's, less what rejected work does not keep.

    Tasks with the same billed seconds, rate, role and outcome cost the same, so the database
    groups them and each group is priced once with the ledger's own rounding.
    """
    if not batch_ids:
        return {}
    specs = _Specs(session)
    out: dict[int, Decimal] = dict.fromkeys(batch_ids, Decimal("0.00"))
    by_project: dict[int, list[int]] = defaultdict(list)
    for batch_id, project_id in session.execute(
        select(Batch.id, Batch.project_id).where(Batch.id.in_(list(batch_ids)))
    ):
        by_project[project_id].append(batch_id)
    # One query per project: its cap on billed time is part of the grouping.
    for project_id, ids in by_project.items():
        policy = specs(project_id).payouts
        cap = int(policy.max_minutes_per_task * 60)
        billed = case((Assignment.worked_seconds > cap, cap), else_=Assignment.worked_seconds).label("billed")
        for batch_id, role, status, seconds, hourly_rate, count in session.execute(
            select(Item.batch_id, Assignment.role, Assignment.status, billed, Expert.hourly_rate, func.count())
            .join(Item, Item.id == Assignment.item_id)
            .join(Expert, Expert.id == Assignment.expert_id)
            .where(Item.batch_id.in_(ids), Assignment.worked_seconds > 0)
            .group_by(Item.batch_id, Assignment.role, Assignment.status, billed, Expert.hourly_rate)
        ):
            _, _, line = time_pay(int(seconds), hourly_rate, policy.role_rates.of(role), policy.max_minutes_per_task)
            if status == "rejected":
                line -= money(line * (1 - policy.rejected_pay_share))
            out[batch_id] += line * count
    return out


def project_costs(session: Session, project_ids: Sequence[int]) -> dict[int, Decimal]:
    """Each project's cost so far: its batches' work plus the bonuses and corrections paid on it."""
    batches = session.execute(select(Batch.project_id, Batch.id).where(Batch.project_id.in_(list(project_ids)))).all()
    costs = batch_costs(session, [b for _, b in batches])
    out: dict[int, Decimal] = defaultdict(lambda: Decimal("0.00"))
    for project_id, batch_id in batches:
        out[project_id] += costs.get(batch_id, Decimal("0.00"))
    for project_id, extra in session.execute(
        select(PayoutEntry.project_id, func.sum(PayoutEntry.amount))
        .where(PayoutEntry.project_id.in_(list(project_ids)), PayoutEntry.kind.in_(("bonus", "correction")))
        .group_by(PayoutEntry.project_id)
    ):
        out[project_id] += Decimal(extra)
    return dict(out)


def expert_id_of(session: Session, handle: str) -> int:
    expert_id = session.scalar(select(Expert.id).where(Expert.handle == handle))
    if expert_id is None:
        raise NightshiftError(f"no expert with handle {handle!r}")
    return expert_id
