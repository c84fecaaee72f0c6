"""Synthetic experts of known accuracy and speed do a batch's open work through the expert API (demo, load)."""

from __future__ import annotations

from prefect import flow
from pydantic import BaseModel, Field

from flows.hooks import FAILURE_HOOKS
from tasks.simulate import issue_simulator_tokens, play_experts, revoke_simulator_tokens


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
