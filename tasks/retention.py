"""Retention's tasks: which batches are due, and purging them one transaction each."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from nightshift.delivery import retention
from nightshift.platform.db import transaction
from nightshift.platform.models import utcnow
from tasks.runtime import DB_TASK, resources


@task(cache_policy=NO_CACHE, **DB_TASK)
def batches_due(client: str | None) -> list[retention.Due]:
    with resources().sessions() as session:
        return retention.due(session, utcnow(), client)


@task(cache_policy=NO_CACHE, task_run_name="purge-batch-{batch_id}", **DB_TASK)
def purge_batch(batch_id: int, actor: str) -> dict[str, Any] | None:
    """One batch's content in one transaction; its delivered folders removed once that committed."""
    with transaction(resources().sessions) as session:
        purged = retention.purge_batch(session, batch_id, utcnow(), actor)
    if purged is None:
        return None
    return {"batch_id": batch_id, "rows": purged.rows, "folders": retention.remove_folders(purged.folders)}


@task(cache_policy=NO_CACHE, **DB_TASK)
def remove_leftover_folders() -> int:
    """Folders of batches purged by a run that stopped before removing them."""
    with resources().sessions() as session:
        leftovers = retention.leftover_folders(session)
    return retention.remove_folders(leftovers)
