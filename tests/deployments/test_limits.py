"""The concurrency limits: created and reset by one idempotent command, and held by the tasks."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from prefect import flow, get_client, task
from typer.testing import CliRunner

from app.cli import app
from deployments.limits import DEFAULT_LIMITS, apply_limits, read_limits
from tasks.runtime import CLIENT_WEBHOOKS, DATABASE, DB_TASK, SLACK


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A Prefect server of this module's own: these tests change the limits' sizes and count the
    slots in use, which the run's shared server has other tests' tasks holding at the same time."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from tests.conftest import POSTGRES_ENV, WORKER
    from tests.servers.prefect import own_prefect_server, template_name

    postgres = os.environ.get(POSTGRES_ENV)
    if postgres is None:
        from prefect.testing.utilities import prefect_test_harness

        with prefect_test_harness(server_startup_timeout=180):
            yield
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    database = f"{template_name(postgres)[:-4]}_limits_{WORKER}"
    server = own_prefect_server(postgres, database, tmp_path_factory.mktemp("limits-server"))
    with server as api_url, temporary_settings({PREFECT_API_URL: api_url}):
        yield
        # The runs' logs and events go to this server before it stops, not to a dead one at the
        # process's exit (retried for minutes).
        APILogWorker.drain_all(timeout=15, at_exit=False)
        EventsWorker.drain_all(timeout=15, at_exit=False)


def _global_limit_names() -> list[str]:
    with get_client(sync_client=True) as client:
        return [limit.name for limit in client.read_global_concurrency_limits(limit=200)]


def test_the_set_up_command_creates_the_limits_and_puts_changed_sizes_back(prefect_api) -> None:
    result = CliRunner().invoke(app, ["limits", "apply"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "database: 8" in result.output and "slack: 1" in result.output
    assert read_limits() == DEFAULT_LIMITS
    # Prefect keeps them as global concurrency limits, one per thing protected.
    assert {f"tag:{t}" for t in (DATABASE, CLIENT_WEBHOOKS, SLACK)} <= set(_global_limit_names())

    apply_limits({DATABASE: 2})  # as an ops engineer might in the UI
    assert read_limits()[DATABASE] == 2
    apply_limits()
    apply_limits()
    assert read_limits() == DEFAULT_LIMITS
    names = _global_limit_names()
    assert names.count(f"tag:{DATABASE}") == 1 and names.count(f"tag:{SLACK}") == 1


def test_a_database_task_holds_a_slot_of_the_database_limit_while_it_runs(prefect_api) -> None:
    apply_limits()

    # A tag of its own too: Prefect caches "these tags have no limits" for 5 s per tag set, and
    # database tasks of earlier tests may have run before the limits existed.
    @task(**DB_TASK | {"tags": [*DB_TASK["tags"], "limits-test"]})
    def busy_slots() -> int:
        with get_client(sync_client=True) as client:
            return client.read_global_concurrency_limit_by_name(f"tag:{DATABASE}").active_slots

    @flow
    def one_task() -> int:
        return busy_slots()

    assert one_task() == 1
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name(f"tag:{DATABASE}").active_slots == 0
