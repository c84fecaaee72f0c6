"""Review a batch: gate submissions, gold and agreement with Great Expectations; aggregate; send
what fails back to the right stage (rework, one more expert, an adjudicator)."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_table_artifact
from prefect.events import emit_event
from prefect.utilities.annotations import quote
from pydantic import BaseModel, Field

from flows.hooks import FAILURE_HOOKS
from nightshift.notify import wording
from nightshift.platform.heap import collection_paused
from nightshift.review.gates import GateOutcome
from tasks.notify import notify_ops
from tasks.review import (
    apply_submissions_gate,
    collect_submissions,
    expert_quality,
    run_submissions_gate,
    settle_round,
)


class ReviewParams(BaseModel):
    batch_id: int = Field(description="The batch to gate and aggregate.")


class ReviewResult(BaseModel):
    batch_id: int
    gated: int
    rejected: int
    paused_experts: int = 0
    requeued_items: int = 0
    passed_items: int
    rework_items: int
    more_overlap_items: int
    adjudication_items: int = 0
    batch_status: str


def _gate_table(outcomes: list[GateOutcome]) -> list[dict[str, object]]:
    return [
        {
            "gate": outcome.gate,
            "expectation": e["expectation"],
            "success": e["success"],
            "failing": e["unexpected_count"],
            "failing ids": ", ".join(map(str, e["failing_ids"][:20])),
            "data docs": outcome.docs_url or "",
        }
        for outcome in outcomes
        for e in outcome.expectations
    ]


@flow(name="review", log_prints=True, **FAILURE_HOOKS)
def review_flow(params: ReviewParams) -> ReviewResult:
    batch_id = params.batch_id
    # The batch is read once; each stage takes its rows. quote(): Prefect would otherwise walk every
    # row, and every answer in it, looking for futures, several times per task call.
    # No garbage collection while the rows are alive: each stage pauses it for what it builds, but
    # between stages every collection of the old generation walked the batch's rows again, none
    # of them garbage.
    with collection_paused():
        rows = quote(collect_submissions(batch_id))
        submissions = run_submissions_gate(batch_id, rows)
        rejected = apply_submissions_gate(batch_id, quote(submissions), rows)
        report = settle_round(batch_id, rows)

    # Ops see what the quality model thinks of each expert, lowest estimate first (artifact "expert-quality").
    create_table_artifact(
        key="expert-quality",
        table=expert_quality(batch_id),
        description=f"Expert quality after reviewing batch {batch_id}",
    )
    outcomes = [o for o in (submissions, report.agreement, report.quality) if o is not None and o.evaluated_ids]
    if outcomes:
        create_table_artifact(key="gate-results", table=_gate_table(outcomes), description=f"Gates of batch {batch_id}")
    for outcome in outcomes:
        if outcome.failures:
            notify_ops(wording.review_gate_failed(outcome, batch_id))
    if report.batch_status == "passed":
        # The deliver deployment's trigger (prefect.yaml) starts this batch's delivery on this event.
        emit_event(
            event="nightshift.batch.passed",
            resource={"prefect.resource.id": f"nightshift.batch.{batch_id}", "nightshift.batch_id": str(batch_id)},
            payload={"batch_id": batch_id},
        )
    return ReviewResult(
        batch_id=batch_id,
        gated=len(submissions.evaluated_ids),
        rejected=rejected,
        paused_experts=report.paused_experts,
        requeued_items=report.requeued_items,
        passed_items=report.passed_items,
        rework_items=report.rework_items,
        more_overlap_items=report.more_overlap_items,
        adjudication_items=report.adjudication_items,
        batch_status=report.batch_status,
    )
