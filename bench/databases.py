"""A fresh PostgreSQL (or SQLite) database per bench run, dropped after it; and a quiet start.

Kept apart from bench/run.py so a bench imports only what it measures: the ingest bench reports
its process's memory, and the pipeline bench imports every stage (numpy among them).
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg

ADMIN_URL = os.environ.get("NIGHTSHIFT_BENCH_POSTGRES_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")


def fresh_database(kind: str, workdir: Path, run: int) -> str:
    if kind == "sqlite":
        path = workdir / f"bench-{os.getpid()}-{run}.db"
        path.unlink(missing_ok=True)
        return f"sqlite:///{path}"
    name = f"nightshift_bench_{os.getpid()}_{run}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name}")
        connection.execute(f"CREATE DATABASE {name}")
    return ADMIN_URL.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    elif url.startswith("postgresql"):
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(ADMIN_URL, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def quiet(url: str) -> None:
    """Let PostgreSQL finish the last phase's writes (checkpoint, vacuum) before timing the next:
    otherwise a phase pays for the one before it."""
    if not url.startswith("postgresql"):
        return
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
        connection.execute("CHECKPOINT")
