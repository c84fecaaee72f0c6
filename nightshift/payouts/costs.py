"""What batches and projects have cost so far: the experts' work priced as the ledger pays it, and
the project's models' tokens at each endpoint's prices (the generated answers and the experts' runs)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from nightshift.payouts.ledger import Specs, money, time_pay
from nightshift.platform.models import Assignment, Batch, Expert, Item, ModelResponse, ModelRun, PayoutEntry

MILLION = Decimal(1_000_000)


def batch_costs(session: Session, batch_ids: Sequence[int]) -> dict[int, Decimal]:
    """Each batch's cost so far, to the cent as its ledger pays it: submitted time, capped per task,
    at each expert's rate times the role's, less what rejected work does not keep.

    Tasks with the same billed seconds, rate, role and outcome cost the same, so the database
    groups them and each group is priced once with the ledger's own rounding.
    """
    if not batch_ids:
        return {}
    specs = Specs(session)
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
            # Unbilled work (settling a record the client rejected) is paid to the expert, not charged.
            .where(Item.batch_id.in_(ids), Assignment.worked_seconds > 0, Assignment.billable.is_(True))
            .group_by(Item.batch_id, Assignment.role, Assignment.status, billed, Expert.hourly_rate)
        ):
            _, _, line = time_pay(int(seconds), hourly_rate, policy.role_rates.of(role), policy.max_minutes_per_task)
            if status == "rejected":
                line -= money(line * (1 - policy.rejected_pay_share))
            out[batch_id] += line * count
    return out


def model_costs(session: Session, batch_ids: Sequence[int]) -> dict[int, Decimal]:
    """Each batch's model tokens so far, to the cent, at the prices its project's spec gives each
    endpoint: the answers generated for its items and the runs its experts asked for."""
    if not batch_ids:
        return {}
    specs = Specs(session)
    project_of = dict(session.execute(select(Batch.id, Batch.project_id).where(Batch.id.in_(list(batch_ids)))).all())
    tokens: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    ids = list(batch_ids)
    generated = (
        select(
            Item.batch_id,
            ModelResponse.endpoint,
            func.sum(ModelResponse.prompt_tokens),
            func.sum(ModelResponse.completion_tokens),
        )
        .join(Item, Item.id == ModelResponse.item_id)
        .where(Item.batch_id.in_(ids))
        .group_by(Item.batch_id, ModelResponse.endpoint)
    )
    ran = (
        select(Item.batch_id, ModelRun.endpoint, func.sum(ModelRun.prompt_tokens), func.sum(ModelRun.completion_tokens))
        .join(Assignment, Assignment.id == ModelRun.assignment_id)
        .join(Item, Item.id == Assignment.item_id)
        .where(Item.batch_id.in_(ids))
        .group_by(Item.batch_id, ModelRun.endpoint)
    )
    for query in (generated, ran):
        for batch_id, endpoint, prompt, completion in session.execute(query):
            tokens[(batch_id, endpoint)][0] += int(prompt or 0)
            tokens[(batch_id, endpoint)][1] += int(completion or 0)
    out: dict[int, Decimal] = dict.fromkeys(batch_ids, Decimal("0.00"))
    for (batch_id, endpoint), (prompt, completion) in tokens.items():
        generation = specs(project_of[batch_id]).generation
        priced = next((e for e in generation.endpoints if e.name == endpoint), None) if generation else None
        if priced is not None:
            cost = prompt * priced.usd_per_million_prompt_tokens + completion * priced.usd_per_million_completion_tokens
            out[batch_id] += money(cost / MILLION)
    return out


def project_costs(session: Session, project_ids: Sequence[int]) -> dict[int, Decimal]:
    """Each project's cost so far: its batches' work and model tokens, plus the bonuses and
    corrections paid on it."""
    batches = session.execute(select(Batch.project_id, Batch.id).where(Batch.project_id.in_(list(project_ids)))).all()
    costs = batch_costs(session, [b for _, b in batches])
    models = model_costs(session, [b for _, b in batches])
    out: dict[int, Decimal] = defaultdict(lambda: Decimal("0.00"))
    for project_id, batch_id in batches:
        out[project_id] += costs.get(batch_id, Decimal("0.00")) + models.get(batch_id, Decimal("0.00"))
    for project_id, extra in session.execute(
        select(PayoutEntry.project_id, func.sum(PayoutEntry.amount))
        .where(PayoutEntry.project_id.in_(list(project_ids)), PayoutEntry.kind.in_(("bonus", "correction")))
        .group_by(PayoutEntry.project_id)
    ):
        out[project_id] += Decimal(extra)
    return dict(out)
