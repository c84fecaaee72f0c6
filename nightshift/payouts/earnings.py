"""An expert's earnings as the workbench shows them: paid to date, and hours not billed yet."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from nightshift.payouts.levels import expert_levels
from nightshift.platform.models import Assignment, Expert, Item, PayoutEntry, Project
from nightshift.projects.registry import project_body
from nightshift.projects.spec import ProjectBody

ADJUSTMENTS_SHOWN = 100


@dataclass
class Earnings:
    hourly_rate: Decimal
    paid_hours: Decimal
    time_pay: Decimal
    bonuses: Decimal
    deductions: Decimal
    total: Decimal
    unpaid_hours: Decimal
    submitted_tasks: int
    by_period: list[dict[str, Any]] = field(default_factory=list)
    # Bonuses, deductions and corrections, newest first, each with why (the ledger's note).
    adjustments: list[dict[str, Any]] = field(default_factory=list)
    # In each project with levels the expert has worked in: the level they are at now, its rate.
    levels: list[dict[str, Any]] = field(default_factory=list)


def earnings(session: Session, expert_id: int) -> Earnings:
    """Pay to date from the ledger, and the hours worked that the next pay run will bill."""
    rate = session.scalar(select(Expert.hourly_rate).where(Expert.id == expert_id))
    assert rate is not None
    totals = {
        kind: (Decimal(minutes or 0), Decimal(amount or 0))
        for kind, minutes, amount in session.execute(
            select(PayoutEntry.kind, func.sum(PayoutEntry.minutes), func.sum(PayoutEntry.amount))
            .where(PayoutEntry.expert_id == expert_id)
            .group_by(PayoutEntry.kind)
        )
    }
    by_period = [
        {"period": period, "amount": Decimal(amount)}
        for period, amount in session.execute(
            select(PayoutEntry.period, func.sum(PayoutEntry.amount))
            .where(PayoutEntry.expert_id == expert_id)
            .group_by(PayoutEntry.period)
            .order_by(PayoutEntry.period.desc())
        )
    ]
    adjustments = [
        {"period": period, "kind": kind, "amount": Decimal(amount), "why": note or ""}
        for period, kind, amount, note in session.execute(
            select(PayoutEntry.period, PayoutEntry.kind, PayoutEntry.amount, PayoutEntry.note)
            .where(PayoutEntry.expert_id == expert_id, PayoutEntry.kind != "time")
            .order_by(PayoutEntry.id.desc())
            .limit(ADJUSTMENTS_SHOWN)
        )
    ]
    paid = select(PayoutEntry.assignment_id).where(PayoutEntry.kind == "time", PayoutEntry.assignment_id.is_not(None))
    mine = and_(Assignment.expert_id == expert_id, Assignment.submitted_at.is_not(None))
    submitted = session.scalar(select(func.count()).where(mine))
    unpaid_seconds = session.scalar(
        select(func.coalesce(func.sum(Assignment.worked_seconds), 0)).where(mine, Assignment.id.not_in(paid))
    )
    zero = (Decimal(0), Decimal(0))
    time_minutes, time_amount = totals.get("time", zero)
    bonuses = totals.get("bonus", zero)[1]
    deductions = totals.get("deduction", zero)[1] + totals.get("correction", zero)[1]
    return Earnings(
        hourly_rate=Decimal(rate),
        paid_hours=(time_minutes / 60).quantize(Decimal("0.01")),
        time_pay=time_amount,
        bonuses=bonuses,
        deductions=deductions,
        total=time_amount + bonuses + deductions,
        unpaid_hours=(Decimal(int(unpaid_seconds or 0)) / 3600).quantize(Decimal("0.01")),
        submitted_tasks=int(submitted or 0),
        by_period=by_period,
        adjustments=adjustments,
        levels=expert_levels(session, expert_id, _projects_of(session, expert_id)),
    )


def _projects_of(session: Session, expert_id: int) -> list[tuple[str, ProjectBody]]:
    ids = session.scalars(
        select(Item.project_id)
        .distinct()
        .join(Assignment, Assignment.item_id == Item.id)
        .where(Assignment.expert_id == expert_id)
    ).all()
    names = dict(session.execute(select(Project.id, Project.name).where(Project.id.in_(ids))).all())
    return [(names[pid], project_body(session, pid)) for pid in sorted(ids)]
