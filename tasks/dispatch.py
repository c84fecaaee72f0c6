from __future__ import annotations

import datetime as dt

from prefect import task
from prefect.cache_policies import NO_CACHE

from nightshift import dispatch
from nightshift.db import transaction
from nightshift.models import utcnow
from tasks.runtime import DB_TASK, resources


@task(cache_policy=NO_CACHE, **DB_TASK)
def plan_dispatch_shards(batch_id: int, shard_size: int) -> list[list[int]]:
    with resources().sessions() as session:
        return dispatch.shards(dispatch.items_to_staff(session, batch_id), shard_size)


@task(cache_policy=NO_CACHE, task_run_name="dispatch-shard-{shard_index}", **DB_TASK)
def dispatch_shard(batch_id: int, item_ids: list[int], shard_index: int) -> dispatch.DispatchReport:
    with transaction(resources().sessions) as session:
        return dispatch.dispatch_items(session, batch_id, item_ids, utcnow())


@task(cache_policy=NO_CACHE, **DB_TASK)
def expire_overdue_assignments(now: dt.datetime | None = None) -> int:
    with transaction(resources().sessions) as session:
        return dispatch.expire_overdue(session, now or utcnow())
