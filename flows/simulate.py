"""Synthetic experts of known accuracy and speed do a batch's open work through the expert API (demo, load)."""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel, Field

from flows.dispatch import DispatchParams, dispatch_flow
from flows.hooks import FAILURE_HOOKS
from flows.review import ReviewParams, review_flow
from tasks.simulate import (
    adjudicate_waiting,
    issue_simulator_tokens,
    play_experts,
    revoke_simulator_tokens,
    simulate_open_work,
    simulated_outcome,
)


class SimulateParams(BaseModel):
    batch_id: int = Field(description="The batch whose open assignments the simulated experts do.")
    url: str = Field(description="Base URL of a running `nightshift serve`.")
    experts: int | None = Field(default=None, ge=1, description="Play at most this many of the batch's experts.")
    concurrency: int = Field(default=100, ge=1, le=1000, description="Experts working at once.")
    tasks_at_once: int = Field(default=1, ge=1, le=20, description="Tasks each expert keeps open at once.")
    time_scale: float = Field(default=1 / 600, ge=0, le=1, description="Seconds waited per simulated second.")


class SimulateResult(BaseModel):
    experts: int
    submitted: int
    refused: int
    closed: int
    seconds: float
    errors: list[str]


@flow(name="simulate", log_prints=True, **FAILURE_HOOKS)
def simulate_flow(params: SimulateParams) -> SimulateResult:
    issued = issue_simulator_tokens(params.batch_id, params.experts)
    try:
        tokens = {handle: token for handle, (_, token) in issued.items()}
        report = play_experts(params.url, tokens, params.time_scale, params.concurrency, params.tasks_at_once)
    finally:
        # Keys that outlive the run would be standing credentials nobody holds.
        revoke_simulator_tokens([key_id for key_id, _ in issued.values()])
    return SimulateResult(
        experts=report.experts,
        submitted=report.submitted,
        refused=report.refused,
        closed=report.closed,
        seconds=round(report.seconds, 2),
        errors=report.errors,
    )


class UntilDoneParams(BaseModel):
    batch_id: int = Field(description="The batch to run to the end with simulated experts.")
    max_rounds: int = Field(default=20, ge=1, le=200, description="Rounds before the batch is called blocked.")


class UntilDoneResult(BaseModel):
    batch_id: int
    batch_status: str
    rounds: int
    delivered_items: int
    accuracy: float
    assignments_per_item: float
    pay_per_item: float


def rounds_idle(idle: int, moved: int) -> int:
    """Rounds in a row in which nothing moved (nothing staffed, answered, decided or settled)."""
    return 0 if moved else idle + 1


def round_is_last(status: str, decided: int, idle: int) -> bool:
    """The batch passed with no adjudication of this round left to settle, or stopped moving: blocked."""
    return (status == "passed" and not decided) or idle >= 2


@flow(name="simulate-until-done", log_prints=True, **FAILURE_HOOKS)
def until_done_flow(params: UntilDoneParams) -> UntilDoneResult:
    """Dispatch, simulated work, review and adjudication, round after round, through the real flows,
    until the batch passes or stops moving (blocked): what a batch really costs, end to end."""
    status, idle, rounds = "", 0, 0
    for rounds in range(1, params.max_rounds + 1):  # noqa: B007  (the last round is reported)
        staffed = dispatch_flow(DispatchParams(batch_id=params.batch_id)).assignments
        answered = simulate_open_work(params.batch_id)
        review = review_flow(ReviewParams(batch_id=params.batch_id))
        decided = adjudicate_waiting(params.batch_id)
        status = review.batch_status
        idle = rounds_idle(idle, staffed + answered + decided + review.passed_items + review.requeued_items)
        if round_is_last(status, decided, idle):
            break
    result = simulated_outcome(params.batch_id)
    return UntilDoneResult(
        batch_id=params.batch_id,
        batch_status=status,
        rounds=rounds,
        delivered_items=result.delivered,
        accuracy=round(result.accuracy, 4),
        assignments_per_item=round(result.assignments_per_item, 3),
        pay_per_item=float(result.pay_per_item),
    )
