from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from nightshift import ingest
from nightshift.db import transaction
from tasks.runtime import DB_TASK, resources


@task(cache_policy=NO_CACHE, **DB_TASK)
def open_ingest_batch(project: str, source: str) -> tuple[int, bool]:
    with transaction(resources().sessions) as session:
        return ingest.open_batch(session, project, Path(source))


@task(cache_policy=NO_CACHE, task_run_name="load-chunk-from-line-{first_line}", **DB_TASK)
def load_item_chunk(batch_id: int, source: str, rows: list[ingest.RawRow], first_line: int) -> dict[str, Any]:
    with transaction(resources().sessions) as session:
        return ingest.load_chunk(session, batch_id, source, rows).as_dict()
