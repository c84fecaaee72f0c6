from __future__ import annotations

from functools import partial

from prefect import task
from prefect.cache_policies import NO_CACHE

from nightshift.platform.db import transaction
from nightshift.simulation import outcome, simulate
from nightshift.work import model_runs
from tasks.runtime import DB_TASK, resources

# Open annotations answered per transaction.
WORK_SLICE = 50_000


@task(cache_policy=NO_CACHE, persist_result=False, **DB_TASK)
def issue_simulator_tokens(batch_id: int, experts: int | None) -> dict[str, tuple[int, str]]:
    with transaction(resources().sessions) as session:
        return simulate.issue_tokens(session, batch_id, experts)


@task(cache_policy=NO_CACHE, **DB_TASK)
def revoke_simulator_tokens(key_ids: list[int]) -> None:
    with transaction(resources().sessions) as session:
        simulate.revoke_tokens(session, key_ids)


# No retries: a retry would replay experts who already submitted (harmlessly, but it would hide
# an API failure behind a second run). The tokens are never task results shown in the UI.
@task(cache_policy=NO_CACHE, persist_result=False)
def play_experts(
    url: str, tokens: dict[str, str], time_scale: float, concurrency: int, tasks_at_once: int
) -> simulate.SimulationReport:
    return simulate.play(url, tokens, time_scale, concurrency, tasks_at_once)


def _runner() -> simulate.RunRewrite:
    """Simulated experts' rewrites run against the project's model through the workbench's own core."""
    return partial(model_runs.run_and_wait, resources().sessions, resources().secrets, resources().models)


@task(cache_policy=NO_CACHE, **DB_TASK)
def simulate_open_work(batch_id: int) -> int:
    """The batch's open annotations answered by their simulated experts, written in bulk, a slice
    at a time (each its own transaction: a round of a big batch stays small in memory, and a
    re-run answers only what is still open)."""
    with resources().sessions() as session:
        open_ids = simulate.open_assignments(session, batch_id)
    answered = 0
    for start in range(0, len(open_ids), WORK_SLICE):
        with transaction(resources().sessions) as session:
            answered += simulate.simulate_work(session, batch_id, open_ids[start : start + WORK_SLICE], _runner())
    return answered


@task(cache_policy=NO_CACHE, **DB_TASK)
def adjudicate_waiting(batch_id: int) -> int:
    """The pool's adjudicators decide what waits for them, through the workbench's own claim."""
    return simulate.simulate_adjudications(resources().sessions, batch_id, run=_runner())


@task(cache_policy=NO_CACHE, **DB_TASK)
def simulated_outcome(batch_id: int) -> outcome.Outcome:
    with resources().sessions() as session:
        return outcome.batch_outcome(session, batch_id)
