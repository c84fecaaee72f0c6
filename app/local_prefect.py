"""A Prefect API for the state folder's commands, when none is configured (no PREFECT_API_URL).

Prefect's answer to no server is a temporary one per process: every command pays its start (the
server's imports alone take seconds) and the runs it recorded are out of sight once it stops. Here
the first command starts one for the state folder instead, in the background: the same server
Prefect's temporary one is (``create_app`` with its UI and services off, its database in
PREFECT_HOME), found by later commands through ``home/run/prefect-api.json`` and stopped after
``local_prefect_idle_seconds`` without a request. A configured server is always used as it is.

The command that starts it does not wait for it until its flow begins: the server starts while
the command loads its own code and reads the database.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from importlib.metadata import version
from pathlib import Path
from typing import Any

from nightshift.platform.background import alive, locked, read_record, run_folder, write_record
from nightshift.platform.errors import NightshiftError
from nightshift.platform.settings import Settings

RECORD_NAME = "prefect-api.json"
LOG_NAME = "prefect-api.log"
IDLE_ENV = "NIGHTSHIFT_LOCAL_PREFECT_IDLE"
FD_ENV = "NIGHTSHIFT_LOCAL_PREFECT_FD"


def start(settings: Settings) -> Callable[[], AbstractContextManager[None]]:
    """Point this process at the folder's local Prefect API, starting it if need be. Returns what
    to run the command's flows in: it waits until the API answers. Must run before Prefect is
    imported: Prefect reads its API's address then."""
    if os.environ.get("PREFECT_API_URL") or settings.local_prefect_idle_seconds <= 0 or "prefect" in sys.modules:
        return _flows_of_a_command
    run_dir = run_folder(settings.home)
    idle_seconds = settings.local_prefect_idle_seconds
    server = {"found": _find_or_spawn(run_dir, idle_seconds)}
    os.environ["PREFECT_API_URL"] = server["found"][0]
    # While this command runs, the server is in use even between its requests: it is told so.
    threading.Thread(target=_keep_alive, args=(server, idle_seconds), daemon=True).start()

    @contextlib.contextmanager
    def ready() -> Iterator[None]:
        url, pid = server["found"]
        if not alive(pid):
            # It stopped between our finding it and the first call (idle for a moment too long):
            # another one, and this command's flows go there.
            url, pid = server["found"] = _find_or_spawn(run_dir, idle_seconds)
        _wait_until_healthy(url, pid, run_dir / LOG_NAME)
        from prefect.settings import temporary_settings

        with temporary_settings(updates={"api.url": url}), _flows_of_a_command():
            yield

    return ready


def _find_or_spawn(run_dir: Path, idle_seconds: float) -> tuple[str, int]:
    with locked(run_dir / "prefect-api.lock"):
        found = read_record(run_dir / RECORD_NAME)
        if found and found.get("fingerprint") == _fingerprint() and alive(found.get("pid")):
            return str(found["url"]), int(found["pid"])
        return _spawn(run_dir, idle_seconds)


def _keep_alive(server: dict[str, tuple[str, int]], idle_seconds: float) -> None:
    while True:
        with contextlib.suppress(OSError):
            urllib.request.urlopen(f"{server['found'][0]}/health", timeout=5).close()
        time.sleep(max(0.5, min(60.0, idle_seconds / 3)))


@contextlib.contextmanager
def _flows_of_a_command() -> Iterator[None]:
    """Flows run by a command, in its process, send no heartbeats. Prefect's heartbeats let a
    server's automation find the runs of a deployment whose worker died; a command's runs end with
    the command, which waits for them. And a flow run waits up to a second at its end for its
    heartbeat thread to stop (it sleeps in steps of a second), which small work felt."""
    from prefect.settings import temporary_settings

    with temporary_settings(updates={"flows.heartbeat_frequency": None}):
        yield


def _spawn(run_dir: Path, idle_seconds: float) -> tuple[str, int]:
    # The socket is bound here and handed over: its address is known before the server has started.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    env = dict(os.environ)
    env.update({IDLE_ENV: str(idle_seconds), FD_ENV: str(listener.fileno())})
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    with (run_dir / LOG_NAME).open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.local_prefect"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            pass_fds=(listener.fileno(),),
            # It outlives this command: out of its process group, so Ctrl-C here does not stop it.
            start_new_session=True,
        )
    listener.close()
    url = f"http://127.0.0.1:{port}/api"
    write_record(run_dir / RECORD_NAME, {"pid": process.pid, "url": url, "fingerprint": _fingerprint()})
    return url, process.pid


def _wait_until_healthy(url: str, pid: int, log: Path) -> None:
    # A new Prefect home migrates its database first, which outlasts a warm start many times over.
    limit = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180"))
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if not alive(pid):
            break
        time.sleep(0.05)
    raise NightshiftError(f"the local Prefect API did not start (its log: {log}); or set PREFECT_API_URL")


def _fingerprint() -> str:
    """A server started by another Prefect, interpreter or Prefect home is not this one's."""
    return f"{sys.executable}|prefect {version('prefect')}|{os.environ.get('PREFECT_HOME', '')}"


def serve() -> None:
    """The server itself (``python -m app.local_prefect``): Prefect's app on the socket it was given,
    until it has been idle long enough."""
    idle_seconds = float(os.environ.pop(IDLE_ENV))
    descriptor = int(os.environ.pop(FD_ENV))
    # As Prefect runs its temporary server: no UI, no background services.
    os.environ.update({"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"})
    import uvicorn
    from prefect.server.api.server import create_app

    _one_sqlite_connection()
    prefect_app = create_app(ephemeral=True, final=True)
    activity = _Activity()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await prefect_app(scope, receive, send)
            return
        with activity.busy():
            await prefect_app(scope, receive, send)

    server = uvicorn.Server(uvicorn.Config(app, fd=descriptor, log_level="error", lifespan="on"))

    def stop_when_idle() -> None:
        while not server.should_exit:
            time.sleep(min(5.0, idle_seconds))
            if activity.idle_for() >= idle_seconds:
                server.should_exit = True

    threading.Thread(target=stop_when_idle, daemon=True).start()
    server.run()


def _one_sqlite_connection() -> None:
    """Prefect's server on a SQLite file opens a pool of connections whose deferred transactions
    read and then write: when another connection wrote in between, SQLite refuses the write at once
    (SQLITE_BUSY_SNAPSHOT, which no busy timeout waits out), the API answers 503 and the client
    tries again two seconds later. Every tagged task's slot request met this while flows wrote
    their runs' states. One connection serializes the server's statements instead, as Prefect
    itself does for an in-memory database; a request waits its turn for the connection, not 2 s."""
    from prefect.server.database import configurations
    from sqlalchemy.pool import AsyncAdaptedQueuePool

    create = configurations.create_async_engine

    def create_async_engine(url: Any, **kwargs: Any) -> Any:
        if str(url).startswith("sqlite"):
            kwargs = {"poolclass": AsyncAdaptedQueuePool, "pool_size": 1, "max_overflow": 0} | kwargs
        return create(url, **kwargs)

    configurations.create_async_engine = create_async_engine  # type: ignore[assignment]


class _Activity:
    """Requests and websockets open now, and when the last one ended."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = 0
        self._last = time.monotonic()

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        with self._lock:
            self._open += 1
        try:
            yield
        finally:
            with self._lock:
                self._open -= 1
                self._last = time.monotonic()

    def idle_for(self) -> float:
        with self._lock:
            return 0.0 if self._open else time.monotonic() - self._last


if __name__ == "__main__":
    serve()
