"""Expert pay: billable time, bonuses and deductions into an append-only ledger, per period.

Money is Decimal throughout and rounded to the cent once per ledger line (half up), so every line
of a statement can be checked by hand: minutes * rate / 60 = amount. Each entry carries an
entry_key naming what it pays for (an assignment's time, an expert's bonus for a period, a
correction's reference); the unique key makes paying a period twice pay nothing twice.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import and_, case, exists, func, select
from sqlalchemy.orm import Session

from nightshift.payouts.levels import SkillLevels, rate_for
from nightshift.payouts.periods import Period
from nightshift.platform.errors import NightshiftError
from nightshift.platform.models import Appeal, Assignment, Expert, Item, PayoutEntry, Submission
from nightshift.platform.sql import insert_ignoring_conflicts, insert_returning_new
from nightshift.projects.registry import project_spec
from nightshift.projects.spec import Bonus, ProjectBody
from nightshift.review.gold import gold_record

CENT = Decimal("0.01")
CURRENCY = "USD"
_CHUNK = 10_000


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


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
    refunds: int = 0
    paid_now: Decimal = Decimal("0.00")
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"paid_now": str(self.paid_now)}


class Specs:
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
    specs = Specs(session)
    for rows in _chunks(_time_entries(session, period, specs)):
        report.time_entries += _write(session, rows, report)
    report.deductions = _write(session, list(_deductions(session, period, specs)), report)
    report.refunds = _write(session, list(_appeal_refunds(session, period)), report)
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


def _time_entries(session: Session, period: Period, specs: Specs) -> Iterator[dict[str, Any]]:
    paid = select(PayoutEntry.assignment_id).where(PayoutEntry.kind == "time", PayoutEntry.assignment_id.is_not(None))
    query = (
        select(
            Assignment.id,
            Assignment.expert_id,
            Item.project_id,
            Assignment.role,
            Assignment.worked_seconds,
            Expert.hourly_rate,
            Expert.reliability,
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
    held = SkillLevels(session)
    for assignment_id, expert_id, project_id, role, worked, own_rate, reliability in session.execute(query):
        seconds = int(worked or 0)
        project = specs(project_id)
        policy = project.payouts
        hourly_rate, level = (
            rate_for(project, held(expert_id), reliability, own_rate) if policy.levels else (own_rate, None)
        )
        minutes, rate, amount = time_pay(seconds, hourly_rate, policy.role_rates.of(role), policy.max_minutes_per_task)
        capped = " (capped)" if Decimal(seconds) / 60 > minutes else ""
        capped += f" at level {level}" if level else ""
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


def _deductions(session: Session, period: Period, specs: Specs) -> Iterator[dict[str, Any]]:
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
            # An upheld appeal says the rejection was wrong: nothing is taken back.
            ~exists().where(
                Submission.assignment_id == Assignment.id,
                Appeal.submission_id == Submission.id,
                Appeal.status == "upheld",
            ),
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


def _appeal_refunds(session: Session, period: Period) -> Iterator[dict[str, Any]]:
    """A deduction taken before its appeal was upheld comes back as a correction of the same
    amount, in the period that finds it; once per appeal (its entry key)."""
    query = (
        select(Appeal.id, PayoutEntry.expert_id, PayoutEntry.project_id, PayoutEntry.amount)
        .join(Submission, Submission.id == Appeal.submission_id)
        .join(PayoutEntry, PayoutEntry.assignment_id == Submission.assignment_id)
        .where(Appeal.status == "upheld", PayoutEntry.kind == "deduction")
        .order_by(Appeal.id)
    )
    # The note names the appeal, never its words: the ledger cannot be purged (append-only).
    for appeal_id, expert_id, project_id, taken in session.execute(query):
        yield _entry(
            "correction",
            f"appeal:{appeal_id}",
            expert_id,
            project_id,
            period,
            -Decimal(taken),
            note=f"appeal {appeal_id} upheld, deduction returned",
        )


def _bonuses(session: Session, period: Period, specs: Specs) -> Iterator[dict[str, Any]]:
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
