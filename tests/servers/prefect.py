"""One Prefect server for a whole test run, on a PostgreSQL database of its own.

Started by the controlling pytest process before Prefect is imported; xdist workers inherit its
PREFECT_API_URL. A temporary server per worker or per module (prefect_test_harness) cost ~10 s to
start each time and, on its SQLite, made concurrent tasks wait seconds for their state writes.
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
from pathlib import Path

import psycopg

START_TIMEOUT_SECONDS = 240


def start_shared_prefect_server(postgres_url: str, state: Path) -> None:
    admin = postgres_url.replace("postgresql+psycopg://", "postgresql://").split("?")[0]
    base = admin.rsplit("/", 1)[1]
    name = f"{base}_prefect"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {name}")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ) | {
        "PREFECT_HOME": str(state / "prefect-server"),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"{admin.rsplit('/', 1)[0]}/{name}".replace(
            "postgresql://", "postgresql+asyncpg://"
        ),
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    env.pop("PREFECT_API_URL", None)
    log = state / "prefect-server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop() -> None:
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(server.pid, signal.SIGKILL)
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    atexit.register(stop)
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not _healthy(url):
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the tests' Prefect server did not start: {log.read_text()[-2000:]}")
        time.sleep(0.3)
    os.environ["PREFECT_API_URL"] = url


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False
