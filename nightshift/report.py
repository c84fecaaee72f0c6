"""Where every batch stands: counts per stage, agreement, cost so far. Read-only."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nightshift.models import Assignment, Batch, Client, GateRun, Item, ItemResult, Project
from nightshift.payouts import batch_costs, project_costs
from nightshift.projects import project_spec


@dataclass
class BatchStatus:
    batch_id: int
    client: str
    project: str
    status: str
    items: dict[str, int] = field(default_factory=dict)
    assignments: dict[str, int] = field(default_factory=dict)
    gates: dict[str, str] = field(default_factory=dict)
    mean_agreement: float | None = None
    cost_so_far_usd: str = "0.00"
    budget_usd: str | None = None
    project_cost_usd: str = "0.00"
    project_budget_usd: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def batch_statuses(session: Session, batch_ids: list[int] | None = None) -> list[BatchStatus]:
    query = (
        select(Batch.id, Client.slug, Project.slug, Batch.status)
        .join(Project, Project.id == Batch.project_id)
        .join(Client, Client.id == Project.client_id)
        .order_by(Batch.id)
    )
    if batch_ids:
        query = query.where(Batch.id.in_(batch_ids))
    out = {bid: BatchStatus(bid, client, project, status) for bid, client, project, status in session.execute(query)}
    if not out:
        return []
    ids = list(out)
    for bid, status, n in session.execute(
        select(Item.batch_id, Item.status, func.count())
        .where(Item.batch_id.in_(ids))
        .group_by(Item.batch_id, Item.status)
    ):
        out[bid].items[status] = n
    for bid, status, n in session.execute(
        select(Item.batch_id, Assignment.status, func.count())
        .join(Item, Item.id == Assignment.item_id)
        .where(Item.batch_id.in_(ids))
        .group_by(Item.batch_id, Assignment.status)
    ):
        out[bid].assignments[status] = n
    for bid, agreement in session.execute(
        select(Item.batch_id, func.avg(ItemResult.agreement))
        .join(ItemResult, ItemResult.item_id == Item.id)
        .where(Item.batch_id.in_(ids))
        .group_by(Item.batch_id)
    ):
        out[bid].mean_agreement = round(float(agreement), 3) if agreement is not None else None
    for bid, gate, success, failed, evaluated in session.execute(
        select(GateRun.batch_id, GateRun.gate, GateRun.success, GateRun.failed, GateRun.evaluated)
        .where(GateRun.batch_id.in_(ids))
        .order_by(GateRun.id)
    ):
        # The latest run of each gate speaks for it.
        out[bid].gates[gate] = "passed" if success else f"failed {failed}/{evaluated}"
    _costs(session, out)
    return list(out.values())


def open_batch_ids(session: Session) -> list[int]:
    return list(
        session.scalars(select(Batch.id).where(Batch.status.not_in(("delivered", "failed"))).order_by(Batch.id))
    )


def _costs(session: Session, out: dict[int, BatchStatus]) -> None:
    """Cost so far as the payout ledger will pay it, beside the batch's and project's budgets."""
    project_of = dict(session.execute(select(Batch.id, Batch.project_id).where(Batch.id.in_(list(out)))).tuples().all())
    batch_cost = batch_costs(session, list(out))
    project_cost = project_costs(session, sorted(set(project_of.values())))
    for batch_id, status in out.items():
        project_id = project_of[batch_id]
        budget = project_spec(session, project_id).project.budget
        status.cost_so_far_usd = str(batch_cost.get(batch_id, Decimal("0.00")))
        status.budget_usd = str(budget.per_batch) if budget.per_batch is not None else None
        status.project_cost_usd = str(project_cost.get(project_id, Decimal("0.00")))
        status.project_budget_usd = str(budget.project) if budget.project is not None else None
