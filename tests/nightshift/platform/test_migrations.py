"""Every migration from an empty database, up and down and up again, on both engines: the test
databases of the rest of the suite are copies of one migrated template and never run them."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text

from nightshift.platform.migrate import alembic_config, upgrade
from nightshift.platform.models import Base
from tests.conftest import SCHEMA, PostgresDatabases


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    with engine.connect() as connection:
        names = set(inspect(connection).get_table_names())
    engine.dispose()
    return names - {"alembic_version"}


def _up_down_up(url: str) -> None:
    upgrade(url)
    assert _tables(url) == set(Base.metadata.tables)
    command.downgrade(alembic_config(url), "base")
    assert _tables(url) == set()
    upgrade(url)
    assert _tables(url) == set(Base.metadata.tables)


def test_every_migration_runs_both_ways_on_sqlite(tmp_path: Path) -> None:
    _up_down_up(f"sqlite:///{tmp_path / 'empty.db'}")


def test_every_migration_runs_both_ways_on_postgresql(postgres_databases: PostgresDatabases) -> None:
    name = f"{postgres_databases.base}_migrations"
    url = postgres_databases.url_of(name)
    postgres_databases._execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    postgres_databases._execute(f"CREATE DATABASE {name}")
    try:
        engine = create_engine(url.split("?")[0])
        with engine.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {SCHEMA}"))
        engine.dispose()
        _up_down_up(url)
    finally:
        postgres_databases.drop(url)


@pytest.fixture(autouse=True)
def _quiet_alembic(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", logger="alembic")
