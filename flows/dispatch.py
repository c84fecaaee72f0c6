"""Dispatch a batch: plan who takes each item, write the plan in shards, report what it costs."""

from __future__ import annotations

from collections import Counter

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import wait
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote
from pydantic import BaseModel, Field

from flows.hooks import FAILURE_HOOKS
from nightshift.dispatch.plan import DispatchReport, PlanShard
from nightshift.notify import wording
from tasks.dispatch import (
    budget_standings,
    expire_overdue_assignments,
    finish_batch_dispatch,
    plan_batch_dispatch,
    write_assignment_shard,
)
from tasks.notify import notify_ops, warn_of_batches_at_risk


class DispatchParams(BaseModel):
    batch_id: int = Field(description="The batch to staff.")
    shard_size: int = Field(default=50_000, ge=100, le=500_000, description="Assignments written per task.")


class DispatchResult(BaseModel):
    batch_id: int
    expired: int
    items: int
    assignments: int
    unassignable: int
    awaiting_models: int = Field(default=0, description="Items waiting for the project's models to answer them.")
    budget_held: int = Field(default=0, description="Items left unstaffed: the budget is used up.")
    budget_stop: str | None = Field(default=None, description="The budgets that stopped dispatch, as they stand.")
    expected_hours: float
    expected_cost_usd: float
    projected_finish: str | None


@flow(name="dispatch", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=2), **FAILURE_HOOKS)
def dispatch_flow(params: DispatchParams) -> DispatchResult:
    expired = expire_overdue_assignments()
    writes = []
    plan = None
    # Shards are written while the planner goes on: the database's share of the work (foreign-key
    # checks, indexes) overlaps the planner's on the other core.
    for part in plan_batch_dispatch(params.batch_id, params.shard_size):
        if isinstance(part, PlanShard):
            # quote(): Prefect would otherwise walk every row of the shard looking for futures.
            writes.append(write_assignment_shard.submit(quote(part.rows), part.due_at, part.index))
        else:
            plan = part
    assert plan is not None, "a plan always ends with its summary"
    wait(writes)
    written = sum(future.result() for future in writes)
    finish_batch_dispatch(params.batch_id, quote(plan.staffed), plan.report.unassignable, plan.report.projected_finish)
    report = plan.report
    if report.awaiting_models:
        print(f"batch {params.batch_id}: {report.awaiting_models} items wait for their model answers (generate)")
    if report.unassignable:
        notify_ops(wording.dispatch_unassignable(params.batch_id, report.unassignable))
    budgets = budget_standings(params.batch_id)
    stopped_by = next((b.describe() for b in budgets if b.key == report.budget_stop_key), None)
    if stopped_by:
        print(
            f"batch {params.batch_id}: {report.budget_held} items wait for budget ({stopped_by}); "
            "raise it with `nightshift budget raise` or the raise-budget deployment"
        )
    for message in wording.budget_alerts(budgets, report.budget_held, report.budget_stop_key):
        notify_ops(message)
    warn_of_batches_at_risk([params.batch_id])
    publish_artifacts(params.batch_id, report, written)
    return DispatchResult(
        batch_id=params.batch_id,
        expired=expired,
        items=report.items,
        assignments=written,
        unassignable=len(report.unassignable),
        awaiting_models=report.awaiting_models,
        budget_held=report.budget_held,
        budget_stop=stopped_by,
        expected_hours=round(report.expected_hours, 1),
        expected_cost_usd=round(report.expected_cost, 2),
        projected_finish=report.projected_finish.isoformat() if report.projected_finish else None,
    )


def _table(title: str, counts: Counter[str]) -> list[str]:
    return [f"| {title} | assignments |", "|---|---|"] + [f"| {k} | {n:,} |" for k, n in counts.most_common()]


def publish_artifacts(batch_id: int, report: DispatchReport, written: int) -> None:
    finish = report.projected_finish.strftime("%Y-%m-%d %H:%M UTC") if report.projected_finish else "nothing new"
    lines = [
        f"# Dispatch of batch {batch_id}",
        "",
        f"{report.items:,} items to staff, {written:,} new assignments, {len(report.unassignable):,} unassignable, "
        f"{report.awaiting_models:,} waiting for model answers.",
        "",
        f"Projected: {report.expected_hours:,.1f} expert hours, ${report.expected_cost:,.2f}, done by {finish}.",
        "",
        *_table("skill", report.by_skill),
        "",
        *_table("language", report.by_language),
        "",
        *_table("region", report.by_region),
    ]
    create_markdown_artifact(key="dispatch-summary", markdown="\n".join(lines))
    create_table_artifact(
        key="dispatch-unassignable",
        table=[{"item_id": i, "reason": why} for i, why in list(report.unassignable.items())[:1000]]
        or [{"item_id": None, "reason": "none"}],
        description=f"Items of batch {batch_id} nobody can take (first 1,000)",
    )
