"""Where every batch stands: counts per stage, agreement, cost so far. Read-only."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from nightshift.payouts.budgets import limits
from nightshift.payouts.costs import batch_costs, model_costs, project_costs
from nightshift.platform.models import (
    Assignment,
    Batch,
    Client,
    Delivery,
    DeliveryMessage,
    GateRun,
    Item,
    ItemResult,
    Project,
    as_utc,
    utcnow,
)


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
    # The experts' pay and the models' tokens so far; model_cost_usd is the models' share of it.
    cost_so_far_usd: str = "0.00"
    model_cost_usd: str = "0.00"
    budget_usd: str | None = None
    project_cost_usd: str = "0.00"
    project_budget_usd: str | None = None
    deadline: str | None = None
    projected_finish: str | None = None
    at_risk: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def batch_statuses(session: Session, batch_ids: list[int] | None = None) -> list[BatchStatus]:
    query = (
        select(Batch.id, Client.slug, Project.slug, Batch.status, Batch.deadline_at, Batch.projected_finish_at)
        .join(Project, Project.id == Batch.project_id)
        .join(Client, Client.id == Project.client_id)
        .order_by(Batch.id)
    )
    if batch_ids:
        query = query.where(Batch.id.in_(batch_ids))
    out = {}
    for bid, client, project, status, deadline, projected in session.execute(query):
        out[bid] = BatchStatus(bid, client, project, status)
        out[bid].deadline = _iso(deadline)
        out[bid].projected_finish = _iso(projected)
        out[bid].at_risk = _late(status, deadline, projected)
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


def _iso(moment: dt.datetime | None) -> str | None:
    return as_utc(moment).isoformat(timespec="minutes") if moment else None


def _late(status: str, deadline: dt.datetime | None, projected: dt.datetime | None) -> bool:
    """Open and either projected to finish after its deadline or already past it."""
    if status in ("delivered", "failed") or deadline is None:
        return False
    return (projected is not None and as_utc(projected) > as_utc(deadline)) or utcnow() > as_utc(deadline)


@dataclass(frozen=True)
class AtRisk:
    client: str
    channel: str | None
    batch_id: int
    deadline: dt.datetime
    projected: dt.datetime
    open_items: int


def batches_at_risk(session: Session, batch_ids: list[int] | None = None) -> list[AtRisk]:
    """Open batches whose projected finish (from their last dispatch) is after their deadline."""
    query = (
        select(Batch.id, Client.slug, Client.slack_channel, Batch.status, Batch.deadline_at, Batch.projected_finish_at)
        .join(Project, Project.id == Batch.project_id)
        .join(Client, Client.id == Project.client_id)
        .where(Batch.deadline_at.is_not(None))
        .order_by(Batch.id)
    )
    if batch_ids is not None:
        query = query.where(Batch.id.in_(batch_ids))
    late = [row for row in session.execute(query) if _late(row[3], row[4], row[5])]
    if not late:
        return []
    open_items = dict(
        session.execute(
            select(Item.batch_id, func.count())
            .where(
                Item.batch_id.in_([row[0] for row in late]),
                Item.status.in_(("pending", "assigned", "rework", "adjudication", "unassignable")),
            )
            .group_by(Item.batch_id)
        ).all()
    )
    out = []
    for bid, client, channel, _status, deadline, projected in late:
        assert deadline is not None  # filtered in the query
        # Never dispatched (nobody could take its items): it finishes no sooner than now.
        finish = as_utc(projected) if projected is not None else utcnow()
        out.append(AtRisk(client, channel, bid, as_utc(deadline), finish, open_items.get(bid, 0)))
    return out


def client_digests(session: Session, since: dt.datetime) -> dict[tuple[str, str | None], list[dict[str, Any]]]:
    """Per client (slug, Slack channel): its open batches and those that moved since `since`."""
    ids = list(
        session.scalars(
            select(Batch.id)
            .where(Batch.status.not_in(("delivered", "failed")) | (Batch.updated_at >= since))
            .order_by(Batch.id)
        )
    )
    channels = dict(session.execute(select(Client.slug, Client.slack_channel)).all())
    out: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
    for s in batch_statuses(session, ids) if ids else []:
        out.setdefault((s.client, channels.get(s.client)), []).append(
            {
                "batch_id": s.batch_id,
                "project": s.project,
                "status": s.status,
                "items": sum(s.items.values()),
                "done": s.items.get("passed", 0) + s.items.get("delivered", 0),
                "in_review": sum(s.items.get(k, 0) for k in ("pending", "assigned", "rework")),
                "delivered": s.items.get("delivered", 0),
                "agreement": s.mean_agreement,
                "cost": s.cost_so_far_usd,
                "budget": s.budget_usd,
            }
        )
    return out


def delivery_history(session: Session, batch_id: int) -> list[dict[str, Any]]:
    """Every delivery version of a batch, newest first, with its pages and attempts counted."""
    pages = (
        select(
            DeliveryMessage.delivery_id,
            func.count().label("pages"),
            func.sum(case((DeliveryMessage.status == "delivered", 1), else_=0)).label("delivered"),
            func.sum(DeliveryMessage.attempt_count).label("attempts"),
        )
        .group_by(DeliveryMessage.delivery_id)
        .subquery()
    )
    rows = session.execute(
        select(Delivery, pages.c.pages, pages.c.delivered, pages.c.attempts)
        .outerjoin(pages, pages.c.delivery_id == Delivery.id)
        .where(Delivery.batch_id == batch_id)
        .order_by(Delivery.version.desc())
    )
    return [
        {
            "version": d.version,
            "status": d.status,
            "reason": d.reason,
            "records": d.record_count,
            "pages": int(total or 0),
            "pages_delivered": int(delivered or 0),
            "attempts": int(attempts or 0),
            "changes": d.manifest.get("changes"),
            "created_at": _iso(d.created_at),
            "file": d.file_path,
        }
        for d, total, delivered, attempts in rows
    ]


def open_batch_ids(session: Session) -> list[int]:
    return list(
        session.scalars(select(Batch.id).where(Batch.status.not_in(("delivered", "failed"))).order_by(Batch.id))
    )


def _costs(session: Session, out: dict[int, BatchStatus]) -> None:
    """Cost so far (the experts' pay as the payout ledger will pay it, and the models' tokens),
    beside the batch's and project's budgets."""
    project_of = dict(session.execute(select(Batch.id, Batch.project_id).where(Batch.id.in_(list(out)))).all())
    batch_cost = batch_costs(session, list(out))
    model_cost = model_costs(session, list(out))
    project_cost = project_costs(session, sorted(set(project_of.values())))
    # The limits as they stand: the spec's, or ops' latest raise (payouts.budgets).
    project_limit = {pid: limits(session, pid, None)[0] for pid in set(project_of.values())}
    for batch_id, status in out.items():
        project_id = project_of[batch_id]
        batch_limit = limits(session, project_id, batch_id)[0]
        models = model_cost.get(batch_id, Decimal("0.00"))
        status.cost_so_far_usd = str(batch_cost.get(batch_id, Decimal("0.00")) + models)
        status.model_cost_usd = str(models)
        status.budget_usd = str(batch_limit) if batch_limit is not None else None
        status.project_cost_usd = str(project_cost.get(project_id, Decimal("0.00")))
        status.project_budget_usd = str(project_limit[project_id]) if project_limit[project_id] is not None else None
