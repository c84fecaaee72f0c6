"""The gate's worker process: calls run there, errors come back, a dead worker is replaced."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from expectations.worker import GateWorker, GateWorkerError
from nightshift.platform.background import alive


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


def wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):  # (reaps it, if it was this process's child)
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    found = tmp_path / "run" / "gate-worker.json"
    if found.exists():  # no worker outlives its test
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(json.loads(found.read_text())["pid"]), signal.SIGKILL)


def test_a_shared_worker_serves_every_caller_of_its_state_folder_and_outlives_each(home: Path) -> None:
    first, second = GateWorker(home, idle_seconds=60), GateWorker(home, idle_seconds=60)
    pid = first.call(os.getpid)
    assert first.shared and second.call(os.getpid) == pid != os.getpid()
    record = home / "run" / "gate-worker.json"
    # The record holds the key to the worker: its owner's alone.
    assert stat.S_IMODE(record.stat().st_mode) == 0o600
    assert json.loads(record.read_text())["pid"] == pid
    assert "NIGHTSHIFT_GATE_WORKER_KEY" not in first.call(environment)
    first.close()  # one command ends; the worker goes on for the next
    assert second.call(os.getpid) == pid
    second.close()
    assert GateWorker(home, idle_seconds=60).call(os.getpid) == pid
    # Another state folder has a worker of its own.
    other = GateWorker(home / "elsewhere", idle_seconds=60)
    try:
        assert other.call(os.getpid) != pid
    finally:
        os.kill(other.call(os.getpid), signal.SIGKILL)


def test_a_shared_worker_stops_after_its_idle_time_and_the_next_caller_starts_another(home: Path) -> None:
    worker = GateWorker(home, idle_seconds=1)
    first = worker.call(os.getpid)
    assert not wait_gone(first, 1.5)  # a connected caller keeps it
    worker.close()
    assert wait_gone(first, 10)
    second = GateWorker(home, idle_seconds=1).call(os.getpid)
    assert second != first


def test_a_worker_of_other_code_or_a_dead_one_is_not_used(home: Path) -> None:
    first = GateWorker(home, idle_seconds=60).call(os.getpid)
    record = home / "run" / "gate-worker.json"
    stale = json.loads(record.read_text())
    record.write_text(json.dumps(stale | {"fingerprint": "code before an upgrade"}))
    second = GateWorker(home, idle_seconds=60).call(os.getpid)
    assert second != first
    os.kill(first, signal.SIGKILL)
    os.kill(second, signal.SIGKILL)
    assert wait_gone(second, 10)
    third = GateWorker(home, idle_seconds=60).call(os.getpid)
    assert third not in (first, second)
