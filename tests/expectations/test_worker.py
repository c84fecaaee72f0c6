"""The gate's worker process: calls run there, errors come back, a dead worker is replaced."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from expectations.worker import GateWorker, GateWorkerError


def loaded(module: str) -> bool:
    return module in sys.modules


def environment() -> dict[str, str]:
    return dict(os.environ)


def fail(message: str) -> None:
    raise ValueError(message)


@pytest.fixture
def worker():
    started = GateWorker()
    yield started
    started.close()


def test_a_call_runs_in_the_worker_process_which_imports_only_what_it_runs(worker: GateWorker) -> None:
    assert worker.pid is None  # started on first use
    child = worker.call(os.getpid)
    assert child == worker.pid != os.getpid()
    assert worker.call(os.getpid) == child  # and kept for the next call
    # The point of the worker: what the caller has loaded (Prefect, say) is not loaded there.
    import prefect  # noqa: F401

    assert loaded("prefect")
    assert not worker.call(loaded, "prefect")
    # The key that authenticates the connection is not left in the worker's environment.
    assert "NIGHTSHIFT_GATE_WORKER_KEY" not in worker.call(environment)


def test_an_error_in_the_worker_comes_back_with_its_message_and_the_worker_serves_on(worker: GateWorker) -> None:
    with pytest.raises(RuntimeError, match=r"^no such column$"):
        worker.call(fail, "no such column")
    child = worker.pid
    assert worker.call(os.getpid) == child


def test_a_killed_worker_fails_the_call_in_flight_and_the_next_call_starts_a_new_one(worker: GateWorker) -> None:
    first = worker.call(os.getpid)
    os.kill(first, signal.SIGKILL)
    with pytest.raises(GateWorkerError, match="stopped"):
        worker.call(os.getpid)
    assert worker.pid is None
    second = worker.call(os.getpid)
    assert second != first


def test_closing_stops_the_process(worker: GateWorker) -> None:
    child = worker.call(os.getpid)
    worker.close()
    assert worker.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)
