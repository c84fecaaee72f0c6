from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from prefect import task
from prefect.cache_policies import NO_CACHE

from nightshift.dispatch import assignments, plan
from nightshift.payouts import budgets
from nightshift.platform.db import transaction
from nightshift.platform.models import utcnow
from tasks.runtime import DB_TASK, db_task, resources

# Tags that global or tag concurrency limits hold to (see deployments/): one planner at a time so
# two batches never hand out the same expert's capacity twice; writers bounded to spare the database.
PLANNER_TAG = "nightshift-dispatch-planner"
DB_WRITE_TAG = "nightshift-db-writes"


# No retries: a retry would plan again while the first attempt's shards are still being written, and
# could staff their items twice over. A failed plan fails the run; the next run plans what is left.
@task(cache_policy=NO_CACHE, **(db_task(PLANNER_TAG) | {"retries": 0}))
def plan_batch_dispatch(batch_id: int, shard_size: int) -> Iterator[plan.PlanShard | plan.DispatchPlan]:
    """A generator task: each shard reaches the flow, and its write starts, while the rest is planned.
    Staffs only what the batch's and its project's budgets leave room for."""
    with resources().sessions() as session:
        room = budgets.room(budgets.standings(session, batch_id, unlimited_too=False))
        yield from plan.plan_in_shards(session, batch_id, utcnow(), shard_size, room)


@task(cache_policy=NO_CACHE, **DB_TASK)
def budget_standings(batch_id: int) -> list[budgets.Standing]:
    """The batch's budget and its project's, as they stand after this dispatch (measured only
    where there is a limit to alert on)."""
    with resources().sessions() as session:
        return budgets.standings(session, batch_id, unlimited_too=False)


@task(cache_policy=NO_CACHE, task_run_name="write-assignments-{shard_index}", **db_task(DB_WRITE_TAG))
def write_assignment_shard(rows: list[tuple[int, int]], due_at: dt.datetime, shard_index: int) -> int:
    with transaction(resources().sessions) as session:
        return assignments.write_assignments(session, rows, due_at)


@task(cache_policy=NO_CACHE, **DB_TASK)
def finish_batch_dispatch(
    batch_id: int, staffed: list[int], unassignable: dict[int, str], projected_finish: dt.datetime | None
) -> None:
    with transaction(resources().sessions) as session:
        assignments.finish_dispatch(session, batch_id, staffed, unassignable, projected_finish)


@task(cache_policy=NO_CACHE, **DB_TASK)
def expire_overdue_assignments(now: dt.datetime | None = None) -> int:
    with transaction(resources().sessions) as session:
        return assignments.expire_overdue(session, now or utcnow())
