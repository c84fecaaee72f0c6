"""Dispatch a batch: shards of items routed to qualified experts, under the database's limit."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, Field

from flows.hooks import FAILURE_HOOKS
from nightshift import notify
from nightshift.dispatch import DispatchReport
from tasks.dispatch import dispatch_shard, expire_overdue_assignments, plan_dispatch_shards
from tasks.notify import notify_ops


class DispatchParams(BaseModel):
    batch_id: int = Field(description="The batch to staff.")
    shard_size: int = Field(default=1_000, ge=1, le=50_000, description="Items per dispatch task.")


class DispatchResult(BaseModel):
    batch_id: int
    expired: int
    items: int
    assignments: int
    unassignable: int
    expected_cost_usd: float


@flow(name="dispatch", log_prints=True, **FAILURE_HOOKS)
def dispatch_flow(params: DispatchParams) -> DispatchResult:
    expired = expire_overdue_assignments()
    report = DispatchReport()
    # Shards run one after another: each reads expert load that the previous one changed.
    for index, shard in enumerate(plan_dispatch_shards(params.batch_id, params.shard_size)):
        report.add(dispatch_shard(params.batch_id, shard, index))
    if report.unassignable:
        first = next(iter(report.unassignable.values()))
        notify_ops(notify.unassignable(params.batch_id, len(report.unassignable), first))
    lines = [f"# Dispatch of batch {params.batch_id}", "", "| language | assignments |", "|---|---|"]
    lines += [f"| {lang} | {n} |" for lang, n in sorted(report.by_language.items())]
    lines += ["", f"Expected cost: ${report.expected_cost:,.2f}", "", "## Unassignable", ""]
    lines += [f"- item {i}: {why}" for i, why in list(report.unassignable.items())[:200]] or ["none"]
    create_markdown_artifact(key="dispatch-summary", markdown="\n".join(lines))
    return DispatchResult(
        batch_id=params.batch_id,
        expired=expired,
        items=report.items,
        assignments=report.assignments,
        unassignable=len(report.unassignable),
        expected_cost_usd=round(report.expected_cost, 2),
    )
