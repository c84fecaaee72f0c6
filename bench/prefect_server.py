"""The benches talk to a Prefect server of their own process, on PostgreSQL, as production does.

- A server apart: flows run where PREFECT_API_URL points, as a deployment's do. Left unset,
  Prefect starts a temporary server, and although that server runs in a subprocess, the flow's
  process imports the whole server application to launch it: 83 MB of this process's memory that
  no production run carries, and the ingest bench reports this process's peak RSS.
- On PostgreSQL: on its default SQLite, the server answered each task's concurrency-slot request
  in about two seconds while the same run wrote task states, logs and events (one writer at a
  time): a small dispatch spent 8 s of its 9 s waiting on it, on PostgreSQL 1 s in all.

Call use_postgres() before anything imports Prefect: Prefect reads its settings when imported.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psycopg

from bench.databases import ADMIN_URL

NAME = f"nightshift_bench_prefect_{os.getpid()}"
START_TIMEOUT_SECONDS = 120


def use_postgres() -> None:
    """Start a Prefect server on a fresh database of its own and point this process at it (unless
    PREFECT_API_URL already names one)."""
    if "PREFECT_API_URL" in os.environ:
        return
    with psycopg.connect(ADMIN_URL, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {NAME} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {NAME}")
    # Registered first, so it runs last: after the server has stopped using the database.
    atexit.register(drop)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ADMIN_URL.replace("postgresql://", "postgresql+asyncpg://").rsplit("/", 1)[0]
    env = dict(os.environ)
    env.update(
        {
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"{server}/{NAME}",
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
    )
    log = Path(tempfile.gettempdir()) / f"{NAME}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "prefect"),
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    atexit.register(_stop, process)
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not _healthy(url):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the bench's Prefect server did not start: see {log}")
        time.sleep(0.5)
    os.environ["PREFECT_API_URL"] = url


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def drop() -> None:
    """Drop the database use_postgres() made."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {NAME} WITH (FORCE)")
