"""Review a batch: gate submissions with Great Expectations, aggregate, send failures back."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_table_artifact
from prefect.events import emit_event
from pydantic import BaseModel, Field

from flows.hooks import FAILURE_HOOKS
from nightshift import notify
from tasks.notify import notify_ops
from tasks.review import apply_gate_and_aggregate, collect_submissions, run_submissions_gate


class ReviewParams(BaseModel):
    batch_id: int = Field(description="The batch to gate and aggregate.")


class ReviewResult(BaseModel):
    batch_id: int
    gated: int
    rejected: int
    passed_items: int
    rework_items: int
    more_overlap_items: int
    batch_status: str


@flow(name="review", log_prints=True, **FAILURE_HOOKS)
def review_flow(params: ReviewParams) -> ReviewResult:
    rows = collect_submissions(params.batch_id)
    outcome = run_submissions_gate(params.batch_id, rows)
    report = apply_gate_and_aggregate(params.batch_id, outcome)
    if outcome.expectations:
        create_table_artifact(
            key="gate-results",
            table=[
                {
                    "gate": outcome.gate,
                    "expectation": e["expectation"],
                    "success": e["success"],
                    "failing": e["unexpected_count"],
                    "failing ids": ", ".join(map(str, e["failing_ids"][:20])),
                }
                for e in outcome.expectations
            ],
            description=f"Gates of batch {params.batch_id}",
        )
    if outcome.failures:
        notify_ops(
            notify.gate_failed(
                outcome.gate,
                params.batch_id,
                len(outcome.failures),
                len(outcome.evaluated_ids),
                f"time on task ≥ {outcome.thresholds['min_time_on_task_seconds']} s and the label schema",
                "failing annotations rejected; their items go back to dispatch for another expert",
            )
        )
    if report.batch_status == "passed":
        # An automation can start delivery on this event.
        emit_event(
            event="nightshift.batch.passed",
            resource={"prefect.resource.id": f"nightshift.batch.{params.batch_id}"},
        )
    return ReviewResult(
        batch_id=params.batch_id,
        gated=report.gated,
        rejected=report.rejected,
        passed_items=report.passed_items,
        rework_items=report.rework_items,
        more_overlap_items=report.more_overlap_items,
        batch_status=report.batch_status,
    )
