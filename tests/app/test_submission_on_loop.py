"""The submission's hot path runs on the event loop (PostgreSQL): a task whose row another
transaction holds does not stall the worker; the submission waits in a thread instead and lands
once the lock is gone."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from sqlalchemy import select, text

from app.deps import LOOP_CONNECTION, Service
from nightshift.platform.models import Assignment, Submission

ANSWER = {
    "rating": 3,
    "error_tags": ["context_misread"],
    "rationale": "The answer misreads the covenant limits in the context, so its plan would breach them.",
    "improved_prompt": "Given the covenant limits in the context, say whether to proceed and show the numbers.",
}


def test_a_locked_task_waits_in_a_thread_while_the_loop_keeps_serving(world, request) -> None:
    if request.node.callspec.id != "postgresql":
        pytest.skip("the loop path is PostgreSQL's; SQLite's submissions always run in threads")
    handle = world.annotators[0]
    task = world.open_tasks(handle)[0]
    outcome: dict[str, object] = {}
    with world.http(world.experts[handle]) as http:
        http.get(f"/api/expert/assignments/{task}").raise_for_status()

        def submit() -> None:
            outcome["status"] = http.post(
                f"/api/expert/assignments/{task}/submission", json={"answer": ANSWER}
            ).status_code
            outcome["at"] = time.monotonic()

        with world.sessions() as holder, holder.begin():
            holder.execute(select(Assignment.id).where(Assignment.id == task).with_for_update())
            sender = threading.Thread(target=submit)
            sender.start()
            time.sleep(0.6)
            # Past the loop's lock timeout the request waits in a thread: the worker answers others.
            started = time.monotonic()
            with world.http() as other:
                assert other.get("/healthz").status_code == 200
            # A stalled loop would answer only once the lock goes, after this assertion: never.
            assert time.monotonic() - started < 2.0
            assert "status" not in outcome
            released = time.monotonic()
        sender.join(timeout=10)
    assert outcome["status"] == 201 and float(outcome["at"]) >= released  # type: ignore[arg-type]
    with world.sessions() as session:
        assert session.scalar(select(Submission.id).where(Submission.assignment_id == task)) is not None


def _on_loop_connections(world, each: str) -> int:
    """Runs `each` (an expression of pg_stat_activity's row) on every loop connection to the
    world's database; returns how many there were."""
    with world.sessions() as admin:
        found: int = admin.scalar(
            text(
                f"SELECT count(*) FROM (SELECT {each} FROM pg_stat_activity"
                " WHERE application_name = :name AND datname = current_database()) AS found"
            ),
            {"name": LOOP_CONNECTION},
        )
    return found


def test_a_lost_loop_connection_costs_no_submission(world, request) -> None:
    if request.node.callspec.id != "postgresql":
        pytest.skip("the loop path is PostgreSQL's; SQLite's submissions always run in threads")
    one, other = world.annotators[:2]
    first, second = world.open_tasks(one)[0], world.open_tasks(other)[0]
    with world.http(world.experts[one]) as http_one, world.http(world.experts[other]) as http_other:
        http_one.get(f"/api/expert/assignments/{first}").raise_for_status()
        http_other.get(f"/api/expert/assignments/{second}").raise_for_status()
        sent = http_one.post(f"/api/expert/assignments/{first}/submission", json={"answer": ANSWER})
        assert sent.status_code == 201
        # The loop's connection lost (a restart, a failover, an idle timeout on the way).
        assert _on_loop_connections(world, "pg_terminate_backend(pid)") == 1
        # The request after it finds the loop's connection gone and goes to a thread; the next
        # ones run on a new loop connection.
        again = http_other.post(f"/api/expert/assignments/{second}/submission", json={"answer": ANSWER})
        assert again.status_code == 201, again.text
    with world.sessions() as session:
        stored = session.scalars(select(Submission.assignment_id).where(Submission.assignment_id.in_([first, second])))
        assert sorted(stored) == sorted([first, second])


def test_a_worker_opens_one_loop_connection_however_many_requests_find_none(world, request) -> None:
    if request.node.callspec.id != "postgresql":
        pytest.skip("the loop path is PostgreSQL's; SQLite's submissions always run in threads")
    service = Service(world.resources)

    async def first_requests() -> set[int]:
        # A cold worker's first requests arrive together, each finding no connection yet.
        return {id(found) for found in await asyncio.gather(*(service.loop_driver() for _ in range(8)))}

    try:
        assert len(asyncio.run(first_requests())) == 1
        # The world's own server holds one too, if a test before this one used it (the tests
        # running beside this one have databases of their own).
        assert _on_loop_connections(world, "pid") in (1, 2)
    finally:
        service.close()
