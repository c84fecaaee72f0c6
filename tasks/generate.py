"""Generation's tasks: plan a batch's chunks, ask one endpoint for one chunk."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from nightshift.generate import chunks, responses
from tasks.runtime import DB_TASK, resources, retry_on_transient


def endpoint_tag(project: str, endpoint: str) -> str:
    """The Prefect tag concurrency limit one endpoint's chunks hold to, across every worker."""
    # Prefect names refuse "/": the limit is named tag:model:<project>:<endpoint>.
    return f"model:{project}:{endpoint}"


@task(cache_policy=NO_CACHE, **DB_TASK)
def plan_generation(batch_id: int, chunk_size: int, endpoints: list[str] | None) -> chunks.Plan:
    with resources().sessions() as session:
        return chunks.plan(session, batch_id, chunk_size, endpoints)


@task(
    cache_policy=NO_CACHE,
    task_run_name="generate-{endpoint}-{index}",
    # The model's own failures are rows, never a failed task; what fails a task is the database
    # (retried) or a bug. A retry asks only what the first attempt did not store.
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_condition_fn=retry_on_transient,
)
def generate_chunk(batch_id: int, endpoint: str, lo: int, hi: int, force: bool, index: int) -> dict[str, Any]:
    res = resources()
    report = chunks.generate_chunk(res.sessions, res.secrets, batch_id, endpoint, lo, hi, force)
    return {"asked": report.asked, "answered": report.answered, "failed": report.failed, "errors": report.errors}


@task(cache_policy=NO_CACHE, **DB_TASK)
def generation_counts(batch_id: int) -> dict[str, dict[str, int]]:
    """endpoint → status → items, latest take of each."""
    with resources().sessions() as session:
        found = responses.counts(session, batch_id)
    table: dict[str, dict[str, int]] = {}
    for (endpoint, status), n in found.items():
        table.setdefault(endpoint, {})[status] = n
    return table


@task(cache_policy=NO_CACHE)
def ensure_endpoint_limits(tags: list[str], slots: int = 1) -> None:
    """One chunk per endpoint at a time across the pool unless ops set it otherwise: the chunk's
    own requests at once are the endpoint's max_concurrent, so two chunks would double them."""
    from prefect import get_client
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound, PrefectHTTPStatusError

    with get_client(sync_client=True) as client:
        for tag in tags:
            try:
                client.read_concurrency_limit_by_tag(tag)
            except ObjectNotFound:
                try:
                    client.create_concurrency_limit(tag=tag, concurrency_limit=slots)
                except ObjectAlreadyExists:
                    pass  # another run of the same project made it first: it stands
                except PrefectHTTPStatusError as exc:
                    # The server's answer when two runs create the same tag's limit at once.
                    if exc.response.status_code != 409:
                        raise
