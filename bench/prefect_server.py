"""The benches' Prefect server keeps its state in PostgreSQL, as the production guide's does.

On its default SQLite, the temporary server answered each task's concurrency-slot request in about
two seconds while the same run wrote task states, logs and events (one writer at a time): a small
dispatch spent 8 s of its 9 s waiting on it, on PostgreSQL 1 s in all. Import this module, and call
use_postgres(), before anything imports Prefect: Prefect reads its settings when imported.
"""

from __future__ import annotations

import atexit
import os

import psycopg

ADMIN_URL = os.environ.get("NIGHTSHIFT_BENCH_POSTGRES_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
NAME = f"nightshift_bench_prefect_{os.getpid()}"


def use_postgres() -> None:
    """Point the temporary Prefect server at a fresh database of its own (unless one is set)."""
    if "PREFECT_SERVER_DATABASE_CONNECTION_URL" in os.environ:
        return
    with psycopg.connect(ADMIN_URL, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {NAME} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {NAME}")
    server = ADMIN_URL.replace("postgresql://", "postgresql+asyncpg://").rsplit("/", 1)[0]
    os.environ["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = f"{server}/{NAME}"
    # Registered before Prefect is imported, so it runs after Prefect has stopped its server.
    atexit.register(drop)


def drop() -> None:
    """Drop the database use_postgres() made."""
    if os.environ.get("PREFECT_SERVER_DATABASE_CONNECTION_URL", "").endswith(f"/{NAME}"):
        with psycopg.connect(ADMIN_URL, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {NAME} WITH (FORCE)")
