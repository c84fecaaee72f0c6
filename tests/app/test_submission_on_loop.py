"""The submission's hot path runs on the event loop (PostgreSQL): a task whose row another
transaction holds does not stall the worker; the submission waits in a thread instead and lands
once the lock is gone."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select

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
