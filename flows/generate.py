"""Generate: the project's models answer a batch's prompts, chunk by chunk, before dispatch.

Each endpoint's chunks run one after another under its own Prefect concurrency limit (requests at
once and per minute are the endpoint's, inside a chunk); endpoints run side by side. Answered
items are never asked again unless forced; failed ones are asked again by the next run.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_table_artifact
from prefect.futures import PrefectFuture, wait
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import allow_failure
from pydantic import BaseModel, Field

from flows.hooks import FAILURE_HOOKS
from tasks.generate import endpoint_tag, ensure_endpoint_limits, generate_chunk, generation_counts, plan_generation


class GenerateParams(BaseModel):
    batch_id: int = Field(description="The batch whose prompts the project's models answer.")
    endpoints: list[str] | None = Field(
        default=None, description="Only these endpoints (by the spec's name); none: every endpoint."
    )
    force: bool = Field(default=False, description="Ask again for items already answered (a new take each).")
    chunk_size: int = Field(default=10_000, ge=10, le=50_000, description="Items per task.")


class EndpointResult(BaseModel):
    endpoint: str
    asked: int = 0
    answered: int = 0
    failed: int = 0
    errors: dict[str, int] = {}
    # The batch's state after the run: items answered and failed, latest take of each.
    items_answered: int = 0
    items_failed: int = 0


class GenerateResult(BaseModel):
    batch_id: int
    project: str
    endpoints: list[EndpointResult]


@flow(name="generate", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=4), **FAILURE_HOOKS)
def generate_flow(params: GenerateParams) -> GenerateResult:
    plan = plan_generation(params.batch_id, params.chunk_size, params.endpoints)
    if not plan.endpoints:
        print(f"batch {params.batch_id}: project {plan.project} has no model endpoints; nothing to generate")
        return GenerateResult(batch_id=params.batch_id, project=plan.project, endpoints=[])
    tags = {e.name: endpoint_tag(plan.project, e.name) for e in plan.endpoints}
    ensure_endpoint_limits(list(tags.values()))
    runs: dict[str, list[PrefectFuture[dict[str, Any]]]] = {}
    for endpoint in plan.endpoints:
        chain: list[PrefectFuture[dict[str, Any]]] = []
        for index, (lo, hi) in enumerate(plan.ranges):
            # One chunk after another per endpoint (a failed one holds back none after it).
            after = [allow_failure(chain[-1])] if chain else []
            chain.append(
                generate_chunk.with_options(tags=[tags[endpoint.name]]).submit(
                    params.batch_id, endpoint.name, lo, hi, params.force, index, wait_for=after
                )
            )
        runs[endpoint.name] = chain
    wait([f for chain in runs.values() for f in chain])
    states = generation_counts(params.batch_id)
    results = []
    for name, chain in runs.items():
        result = EndpointResult(
            endpoint=name,
            items_answered=states.get(name, {}).get("ok", 0),
            items_failed=states.get(name, {}).get("failed", 0),
        )
        for future in chain:
            done = future.result()
            result.asked += int(done["asked"])
            result.answered += int(done["answered"])
            result.failed += int(done["failed"])
            for kind, n in done["errors"].items():
                result.errors[kind] = result.errors.get(kind, 0) + n
        results.append(result)
    create_table_artifact(
        key="generate-summary",
        table=[r.model_dump() | {"errors": str(r.errors)} for r in results],
        description=f"Model responses for batch {params.batch_id}",
    )
    return GenerateResult(batch_id=params.batch_id, project=plan.project, endpoints=results)
