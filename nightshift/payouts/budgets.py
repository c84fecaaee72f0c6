"""Budgets: a batch's and its project's limits in dollars and expert hours (the spec's, or the
latest raise by ops), what is spent and committed against them, the room dispatch has left, and
which alert thresholds they have crossed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from nightshift.dispatch.plan import BudgetRoom, Room
from nightshift.payouts.costs import batch_costs, model_costs, project_costs
from nightshift.platform.audit import record_transition
from nightshift.platform.errors import NightshiftError
from nightshift.platform.models import Assignment, Batch, BudgetLimit, Expert, Item, Project
from nightshift.projects.registry import project_body

# Shares of a limit at which ops hear of it, as percentages.
ALERTS = (80, 100)


@dataclass(frozen=True)
class Standing:
    """One budget (a batch's or a project's): its limits and what is spent or committed against
    them (committed: open assignments at the expected minutes per item)."""

    scope: str
    key: str
    usd_limit: Decimal | None
    hours_limit: Decimal | None
    usd_used: Decimal
    hours_used: Decimal

    @property
    def limited(self) -> bool:
        return self.usd_limit is not None or self.hours_limit is not None

    def share(self) -> Decimal:
        """The largest share of a limit used (0 with no limit)."""
        shares = [
            used / limit if limit else (Decimal(1) if used else Decimal(0))
            for used, limit in ((self.usd_used, self.usd_limit), (self.hours_used, self.hours_limit))
            if limit is not None
        ]
        return max(shares, default=Decimal(0))

    def crossed(self, stopped: bool = False) -> list[int]:
        """The alert thresholds (percent) this budget has reached; all of them when it stopped
        dispatch (the next item would have passed it)."""
        share = self.share()
        return [pct for pct in ALERTS if self.limited and (stopped or share * 100 >= pct)]

    def describe(self) -> str:
        parts = []
        if self.usd_limit is not None:
            parts.append(f"${self.usd_used:,.2f} of ${self.usd_limit:,.2f}")
        if self.hours_limit is not None:
            parts.append(f"{self.hours_used:,.1f} of {self.hours_limit:,.1f} expert hours")
        return f"{self.scope}: " + ", ".join(parts)


def limits(session: Session, project_id: int, batch_id: int | None) -> tuple[Decimal | None, Decimal | None]:
    """A scope's limits in USD and hours: ops' latest raise, else the project's spec."""
    raised = session.execute(
        select(BudgetLimit.usd, BudgetLimit.hours)
        .where(
            BudgetLimit.project_id == project_id,
            BudgetLimit.batch_id == batch_id if batch_id is not None else BudgetLimit.batch_id.is_(None),
        )
        .order_by(BudgetLimit.id.desc())
        .limit(1)
    ).one_or_none()
    if raised is not None:
        return raised.usd, raised.hours
    budget = project_body(session, project_id).budget
    if batch_id is None:
        return budget.project, budget.project_hours
    return budget.per_batch, budget.per_batch_hours


def _hours_and_commitments(session: Session, project_id: int, batch_ids: Sequence[int]) -> tuple[Decimal, Decimal]:
    """Expert hours worked (billed, capped per task) and open work's expected hours and dollars."""
    body = project_body(session, project_id)
    cap = int(body.payouts.max_minutes_per_task * 60)
    per_item = Decimal(str(body.expected_minutes_per_item)) / 60
    in_batches = Item.batch_id.in_(list(batch_ids))
    worked = session.scalar(
        select(func.sum(case((Assignment.worked_seconds > cap, cap), else_=Assignment.worked_seconds)))
        .join(Item, Item.id == Assignment.item_id)
        .where(in_batches, Assignment.worked_seconds > 0)
    )
    hours = Decimal(int(worked or 0)) / 3600
    committed = Decimal(0)
    for role, rate, count in session.execute(
        select(Assignment.role, Expert.hourly_rate, func.count())
        .join(Item, Item.id == Assignment.item_id)
        .join(Expert, Expert.id == Assignment.expert_id)
        .where(in_batches, Assignment.open_expert_id.is_not(None))
        .group_by(Assignment.role, Expert.hourly_rate)
    ):
        hours += per_item * count
        committed += per_item * rate * body.payouts.role_rates.of(role) * count
    return hours, committed


def _standing(
    session: Session, project_id: int, batch_id: int | None, scope: str, key: str, measured: bool
) -> Standing:
    """A batch's budget, or (batch_id None) its project's. measured=False: what is used is
    measured only where there is a limit."""
    usd_limit, hours_limit = limits(session, project_id, batch_id)
    hours = spent = committed = Decimal(0)
    if measured or usd_limit is not None or hours_limit is not None:
        if batch_id is not None:
            batches = [batch_id]
            spent = batch_costs(session, batches).get(batch_id, Decimal(0))
            spent += model_costs(session, batches).get(batch_id, Decimal(0))
        else:
            batches = list(session.scalars(select(Batch.id).where(Batch.project_id == project_id)))
            spent = project_costs(session, [project_id]).get(project_id, Decimal(0))
        hours, committed = _hours_and_commitments(session, project_id, batches)
    return Standing(scope, key, usd_limit, hours_limit, spent + committed, hours)


def _batch_standing(session: Session, project_id: int, batch_id: int, measured: bool = True) -> Standing:
    return _standing(session, project_id, batch_id, f"batch {batch_id}", f"batch:{batch_id}", measured)


def _project_standing(session: Session, project_id: int, slug: str, measured: bool = True) -> Standing:
    return _standing(session, project_id, None, f"project {slug}", f"project:{project_id}", measured)


def standings(session: Session, batch_id: int, unlimited_too: bool = True) -> list[Standing]:
    """The batch's budget and its project's. unlimited_too=False: what is used is measured only
    where there is a limit (dispatch's question; a budget nobody set costs it nothing)."""
    project_id, slug = session.execute(
        select(Project.id, Project.slug).join(Batch, Batch.project_id == Project.id).where(Batch.id == batch_id)
    ).one()
    return [
        _batch_standing(session, project_id, batch_id, unlimited_too),
        _project_standing(session, project_id, slug, unlimited_too),
    ]


def room(found: Sequence[Standing]) -> Room:
    """What these budgets leave for new work, each budget on its own."""
    return Room(
        tuple(
            BudgetRoom(
                s.key,
                float(s.usd_limit - s.usd_used) if s.usd_limit is not None else None,
                float(s.hours_limit - s.hours_used) if s.hours_limit is not None else None,
            )
            for s in found
            if s.limited
        )
    )


def raise_budget(
    session: Session,
    batch_id: int | None,
    project_slug: str | None,
    usd: Decimal | None,
    hours: Decimal | None,
    actor: str,
    reason: str,
) -> Standing:
    """Set a batch's (or, with project_slug alone, a project's) limits; a limit not given keeps
    its current value. Kept as a row (the raises' history) and in the audit log. Returns the
    budget as it now stands."""
    if (batch_id is None) == (project_slug is None):
        raise NightshiftError("name a batch or a project, not both")
    if usd is None and hours is None:
        raise NightshiftError("give a limit in USD, in hours, or both")
    for value in (usd, hours):
        if value is not None and (not value.is_finite() or value < 0 or value >= Decimal("1e11")):
            raise NightshiftError("a limit is a number from 0 up to 100 billion")
    reason = " ".join(reason.split())[:500]
    if not reason:
        raise NightshiftError("say why the budget changes (a reason)")
    if batch_id is not None:
        found = session.execute(
            select(Project.id, Project.slug).join(Batch, Batch.project_id == Project.id).where(Batch.id == batch_id)
        ).one_or_none()
        if found is None:
            raise NightshiftError(f"batch {batch_id} not found")
    else:
        found = session.execute(select(Project.id, Project.slug).where(Project.slug == project_slug)).one_or_none()
        if found is None:
            raise NightshiftError(f"project {project_slug!r} not found")
    project_id, slug = found
    usd_now, hours_now = limits(session, project_id, batch_id)
    row = BudgetLimit(
        project_id=project_id,
        batch_id=batch_id,
        usd=usd if usd is not None else usd_now,
        hours=hours if hours is not None else hours_now,
        actor=actor[:200],
        reason=reason,
    )
    session.add(row)
    session.flush()
    detail = {"usd": _text(row.usd), "hours": _text(row.hours), "reason": reason}
    if batch_id is not None:
        record_transition(session, "batch_budget", batch_id, None, "raised", actor[:100], detail)
        return _batch_standing(session, project_id, batch_id)
    record_transition(session, "project_budget", project_id, None, "raised", actor[:100], detail)
    return _project_standing(session, project_id, slug)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)
