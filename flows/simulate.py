"""Let synthetic experts of known accuracy and speed do a batch's open work (demo and load tests)."""

from __future__ import annotations

from prefect import flow, unmapped
from pydantic import BaseModel, Field

from flows.hooks import FAILURE_HOOKS
from nightshift.dispatch import shards
from tasks.simulate import list_open_assignments, simulate_shard


class SimulateParams(BaseModel):
    batch_id: int = Field(description="The batch whose open assignments the simulated experts do.")
    shard_size: int = Field(default=2_000, ge=1, le=50_000)


@flow(name="simulate", log_prints=True, **FAILURE_HOOKS)
def simulate_flow(params: SimulateParams) -> int:
    work = shards(list_open_assignments(params.batch_id), params.shard_size)
    # Shards touch disjoint assignments, so they may run side by side.
    return sum(simulate_shard.map(unmapped(params.batch_id), work, range(len(work))).result())
