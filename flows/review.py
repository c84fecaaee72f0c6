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
from nightshift.review.gates import GateTally
from nightshift.review.settle import ReviewReport
from tasks.notify import notify_ops
from tasks.review import (
    QUALITY_ROWS,
    project_agreement_gate,
    review_part,
    review_parts,
    round_copies,
    settle_experts,
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
    awaiting_review: int = 0
    batch_status: str


def _gate_table(tallies: list[GateTally]) -> list[dict[str, object]]:
    return [
        {
            "gate": tally.gate,
            "expectation": e["expectation"],
            "success": e["success"],
            "failing": e["unexpected_count"],
            "failing ids": ", ".join(map(str, e["failing_ids"][:20])),
            "data docs": tally.docs_url or "",
        }
        for tally in tallies
        for e in tally.expectations
    ]


@flow(name="review", log_prints=True, **FAILURE_HOOKS)
def review_flow(params: ReviewParams) -> ReviewResult:
    batch_id = params.batch_id
    # A round is reviewed part by part (by item), each part's submissions read once and held only
    # while it is gated and aggregated: memory stays bounded at any batch size. A small round is one part.
    parts = review_parts(batch_id)
    # A copy across two parts is a copy too: found over the whole round first.
    copies = round_copies(batch_id) if len(parts) > 1 else None
    submissions, agreement = GateTally("submissions"), GateTally("agreement")
    items = ReviewReport()
    for part in parts:
        # No garbage collection while a part's rows are alive: every collection of the old
        # generation walked them again, none of them garbage. Between parts, it runs as usual.
        with collection_paused():
            done = review_part(batch_id, part, quote(copies))
        submissions.merge(done.submissions)
        agreement.merge(done.agreement)
        items.add_items(done.report)
    report, experts = settle_experts(batch_id)
    quality = GateTally("gold")
    quality.add(report.quality)

    # Ops see what the quality model thinks of each expert, lowest estimate first (artifact "expert-quality").
    create_table_artifact(
        key="expert-quality",
        table=experts,
        description=f"Expert quality after reviewing batch {batch_id}, lowest first (at most {QUALITY_ROWS:,})",
    )
    tallies = [t for t in (submissions, agreement, quality) if t.evaluated]
    if tallies:
        create_table_artifact(key="gate-results", table=_gate_table(tallies), description=f"Gates of batch {batch_id}")
    for tally in tallies:
        if tally.failed:
            notify_ops(wording.review_gate_failed(tally, batch_id))
    if report.awaiting_review:
        print(
            f"batch {batch_id}: {report.awaiting_review} annotations wait for their review before the gate judges them"
        )
    if report.batch_status == "passed":
        # The deliver deployment's trigger (prefect.yaml) starts this batch's delivery on this event.
        emit_event(
            event="nightshift.batch.passed",
            resource={"prefect.resource.id": f"nightshift.batch.{batch_id}", "nightshift.batch_id": str(batch_id)},
            payload={"batch_id": batch_id},
        )
        # The project's health, after the event: a failure here holds back no delivery.
        project_gate = project_agreement_gate(batch_id, return_state=True)
        if project_gate.is_completed() and not project_gate.result().success:
            notify_ops(wording.project_agreement_low(project_gate.result(), batch_id))
    return ReviewResult(
        batch_id=batch_id,
        gated=submissions.evaluated,
        rejected=submissions.failed,
        paused_experts=report.paused_experts,
        requeued_items=report.requeued_items,
        passed_items=items.passed_items,
        rework_items=items.rework_items,
        more_overlap_items=items.more_overlap_items,
        adjudication_items=items.adjudication_items,
        awaiting_review=report.awaiting_review,
        batch_status=report.batch_status,
    )
