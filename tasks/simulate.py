from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from nightshift import simulate
from nightshift.db import transaction
from tasks.runtime import DB_TASK, resources


@task(cache_policy=NO_CACHE, **DB_TASK)
def list_open_assignments(batch_id: int) -> list[int]:
    with resources().sessions() as session:
        return simulate.open_assignments(session, batch_id)


@task(cache_policy=NO_CACHE, task_run_name="simulate-shard-{shard_index}", **DB_TASK)
def simulate_shard(batch_id: int, assignment_ids: list[int], shard_index: int) -> int:
    with transaction(resources().sessions) as session:
        return simulate.simulate_work(session, batch_id, assignment_ids)
