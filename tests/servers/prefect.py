"""Prefect servers for the tests, on PostgreSQL, as production runs them.

One server serves the whole run: started by the controlling pytest process before Prefect is
imported, its PREFECT_API_URL inherited by every xdist worker. A temporary server per worker or
module (prefect_test_harness) cost ~10-30 s to start each time and, on its SQLite, made concurrent
tasks wait seconds for their state writes.

Prefect's schema is migrated once per run into a template database; each server's database is a
copy of it (CREATE DATABASE … TEMPLATE), so a server of a test's own (the limits tests, a local
stack) starts in seconds rather than migrating ~100 revisions first.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

START_TIMEOUT_SECONDS = 240


def _admin(postgres_url: str) -> str:
    return postgres_url.replace("postgresql+psycopg://", "postgresql://").split("?")[0]


def template_name(postgres_url: str) -> str:
    return f"{_admin(postgres_url).rsplit('/', 1)[1]}_prefect_tpl"


def asyncpg_url(postgres_url: str, database: str) -> str:
    return f"{_admin(postgres_url).rsplit('/', 1)[0]}/{database}".replace("postgresql://", "postgresql+asyncpg://")


def _execute(postgres_url: str, *statements: str) -> None:
    with psycopg.connect(_admin(postgres_url), autocommit=True) as connection:
        for statement in statements:
            connection.execute(statement)


def _server_env(state: Path, database_url: str) -> dict[str, str]:
    env = dict(os.environ) | {
        "PREFECT_HOME": str(state),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": database_url,
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    env.pop("PREFECT_API_URL", None)
    return env


def make_template(postgres_url: str, state: Path) -> None:
    """Prefect's schema, migrated once into the run's template database."""
    name = template_name(postgres_url)
    _execute(postgres_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}")
    subprocess.run(
        [sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"],
        env=_server_env(state, asyncpg_url(postgres_url, name)),
        check=True,
        capture_output=True,
        timeout=START_TIMEOUT_SECONDS,
    )
    atexit.register(_execute, postgres_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def copy_of_template(postgres_url: str, database: str) -> str:
    """A new database holding Prefect's migrated schema; its asyncpg URL, for a server."""
    _execute(
        postgres_url,
        f"DROP DATABASE IF EXISTS {database} WITH (FORCE)",
        f"CREATE DATABASE {database} TEMPLATE {template_name(postgres_url)}",
    )
    return asyncpg_url(postgres_url, database)


def drop(postgres_url: str, database: str) -> None:
    _execute(postgres_url, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


class PrefectServer:
    """`prefect server start` on a copy of the template, in a process group of its own."""

    def __init__(self, postgres_url: str, database: str, state: Path) -> None:
        self.postgres_url = postgres_url
        self.database = database
        self.state = state
        self.api_url = ""
        self.extra_env: dict[str, str] = {}
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> PrefectServer:
        url = copy_of_template(self.postgres_url, self.database)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.state.mkdir(parents=True, exist_ok=True)
        log = self.state / "prefect-server.log"
        with log.open("wb") as out:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                env=_server_env(self.state, url) | self.extra_env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.api_url = f"http://127.0.0.1:{port}/api"
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not _healthy(self.api_url):
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"a test Prefect server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        return self

    def stop(self) -> None:
        if self._process is not None:
            try:
                os.killpg(self._process.pid, signal.SIGTERM)
                self._process.wait(timeout=30)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process = None
        drop(self.postgres_url, self.database)


# The shared server runs no deployments and no schedules: the services that watch for them are
# CPU the tests' own work needs (the run is CPU-bound on two cores). Runs' states and events stay.
IDLE_SERVICES = (
    "SCHEDULER",
    "LATE_RUNS",
    "FOREMAN",
    "PAUSE_EXPIRATIONS",
    "REPOSSESSOR",
    "CANCELLATION_CLEANUP",
    "CLEANUP_RECONCILER",
    "DB_VACUUM",
    "EVENT_LOGGER",
    "TRIGGERS",
)


def start_shared_prefect_server(postgres_url: str, state: Path) -> None:
    """The run's server: PREFECT_API_URL for this process and every process it starts."""
    make_template(postgres_url, state / "prefect-template")
    server = PrefectServer(postgres_url, f"{template_name(postgres_url)[:-4]}_shared", state / "prefect-server")
    server.extra_env = {f"PREFECT_SERVER_SERVICES_{name}_ENABLED": "false" for name in IDLE_SERVICES}
    server.start()
    # Registered after the template's drop, so it runs before it.
    atexit.register(server.stop)
    os.environ["PREFECT_API_URL"] = server.api_url


@contextmanager
def own_prefect_server(postgres_url: str, database: str, state: Path) -> Iterator[str]:
    """A server of a test's own (for tests that change or count global concurrency limits):
    its API URL while the block runs."""
    server = PrefectServer(postgres_url, database, state).start()
    try:
        yield server.api_url
    finally:
        server.stop()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False
