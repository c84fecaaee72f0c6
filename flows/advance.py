"""Advance one batch one step: staff its open items, review what came in, deliver what passed.

The nightly pipeline starts one of these per open batch. Deployed, each is its own flow run, so
any worker of the pool takes it and one client's failure stays in its own run.
"""

from __future__ import annotations

from typing import Literal

from prefect import flow
from pydantic import BaseModel, Field

from flows.deliver import DeliverParams, deliver_flow
from flows.dispatch import DispatchParams, dispatch_flow
from flows.generate import GenerateParams, generate_flow
from flows.hooks import FAILURE_HOOKS
from flows.review import ReviewParams, review_flow

Delivery = Literal["in-flow", "on-event"]


class AdvanceParams(BaseModel):
    batch_id: int = Field(description="The batch to advance.")
    delivery: Delivery = Field(
        default="in-flow",
        description=(
            "in-flow: deliver in this run once the batch has passed. on-event: leave delivery to the "
            "deliver deployment, which a nightshift.batch.passed event starts (prefect.yaml's trigger)."
        ),
    )


class AdvanceResult(BaseModel):
    batch_id: int
    steps: dict[str, str] = Field(description="Each step's final state.")
    batch_status: str | None = None


class BatchStepsFailed(RuntimeError):
    pass


@flow(name="advance-batch", flow_run_name="advance-batch-{params.batch_id}", log_prints=True, **FAILURE_HOOKS)
def advance_batch_flow(params: AdvanceParams) -> AdvanceResult:
    # Every step runs even when an earlier one failed: a dispatch that cannot staff new items must
    # not hold back the review of work already submitted.
    states = {
        # Items a model failed to answer before are asked again; a batch without models is a no-op.
        "generate": generate_flow(GenerateParams(batch_id=params.batch_id), return_state=True),
        "dispatch": dispatch_flow(DispatchParams(batch_id=params.batch_id), return_state=True),
        "review": review_flow(ReviewParams(batch_id=params.batch_id), return_state=True),
    }
    if params.delivery == "in-flow":
        # Also re-sends this batch's due retries when it is already being delivered.
        states["deliver"] = deliver_flow(DeliverParams(batch_id=params.batch_id), return_state=True)
    failed = [name for name, state in states.items() if not state.is_completed()]
    if failed:
        raise BatchStepsFailed(f"batch {params.batch_id}: {', '.join(failed)} failed")
    reviewed = states["review"].result()
    return AdvanceResult(
        batch_id=params.batch_id,
        steps={name: state.type.value for name, state in states.items()},
        batch_status=reviewed.batch_status,
    )
