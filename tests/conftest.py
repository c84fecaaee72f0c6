"""Shared fixtures: real databases (SQLite and PostgreSQL), a real Prefect API, real local servers.

Set-up is paid once per run, not per test: the schema is migrated once into a template (a
PostgreSQL database each test's database is created from; a SQLite file each test copies), and
one Prefect server on PostgreSQL serves the whole run, every xdist worker included.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

# Before anything imports Prefect: keep its state and ours out of the developer's folders.
_STATE = Path(tempfile.mkdtemp(prefix="nightshift-tests-"))
os.environ["NIGHTSHIFT_HOME"] = str(_STATE)
os.environ.pop("NIGHTSHIFT_DATABASE_URL", None)
os.environ.pop("NIGHTSHIFT_SLACK_TOKEN", None)
# Nothing a test starts outlives the run: each process has its own gate worker, and the Prefect API
# is the run's shared server (below) or Prefect's temporary one. Tests of the shared ones set these.
os.environ["NIGHTSHIFT_GATE_WORKER_IDLE_SECONDS"] = "0"
os.environ["NIGHTSHIFT_LOCAL_PREFECT_IDLE_SECONDS"] = "0"
POSTGRES_ENV = "NIGHTSHIFT_TEST_POSTGRES_URL"
# Runs' logs stay in each process's own log, not shipped to the Prefect API: nothing here reads them
# there, and the server's handling of them was a good share of the run's CPU.
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
# gw0, gw1… under xdist; "main" in a lone pytest.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")

from tests.servers.prefect import start_shared_prefect_server  # noqa: E402

# The controller (or a lone pytest) starts the run's one Prefect server before Prefect is
# imported anywhere; xdist workers inherit PREFECT_API_URL from it.
if WORKER == "main" and os.environ.get(POSTGRES_ENV) and "PREFECT_API_URL" not in os.environ:
    start_shared_prefect_server(os.environ[POSTGRES_ENV], _STATE)

from nightshift.resources import prepare_process  # noqa: E402

prepare_process()

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from app.model_server import ModelServerThread  # noqa: E402
from app.receiver import WebhookReceiver  # noqa: E402
from nightshift.delivery.endpoints import new_webhook_secret  # noqa: E402
from nightshift.experts.registry import import_experts, parse_experts  # noqa: E402
from nightshift.platform.db import make_engine, make_sessionmaker, transaction  # noqa: E402
from nightshift.platform.migrate import upgrade  # noqa: E402
from nightshift.projects.registry import apply_spec  # noqa: E402
from nightshift.projects.spec import ProjectSpec, load_spec  # noqa: E402
from tests.servers.slack import SlackStandIn  # noqa: E402

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
# Each test database holds the schema under this name, chosen through the connection's search_path.
SCHEMA = "nightshift"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first, longest first, each beside a quick one; the rest after, in the random
    order pytest-randomly gave them. With xdist handing out one test at a time (--maxschedchunk 1),
    the long ones start at once on separate workers instead of one starting last and the run
    waiting for it alone."""
    slow = sorted(
        (item for item in items if item.get_closest_marker("slow")),
        key=lambda item: -float(item.get_closest_marker("slow").args[0]),  # type: ignore[union-attr]
    )
    quick = [item for item in items if not item.get_closest_marker("slow")]
    ordered: list[pytest.Item] = []
    for item in slow:
        ordered.append(item)
        if quick:
            ordered.append(quick.pop(0))
    items[:] = ordered + quick


def _postgres_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{POSTGRES_ENV} is not set: PostgreSQL tests must run in CI")
        pytest.skip(f"{POSTGRES_ENV} not set")
    return url


class PostgresDatabases:
    """Test databases made from one migrated template (CREATE DATABASE … TEMPLATE), ~0.1 s each
    where migrating afresh took ~0.75 s; each dropped when its test ends."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.base = url.rsplit("/", 1)[1].split("?")[0]
        self.template = f"{self.base}_tpl_{WORKER}"
        self._admin = create_engine(url, isolation_level="AUTOCOMMIT", pool_size=1)
        self._count = 0
        self._lock = threading.Lock()
        self._ready = False

    def _execute(self, statement: str) -> None:
        with self._admin.connect() as connection:
            connection.execute(text(statement))

    def url_of(self, name: str) -> str:
        return f"{self.url.rsplit('/', 1)[0]}/{name}?options=-csearch_path%3D{SCHEMA}"

    def _make_template(self) -> None:
        self._execute(f"DROP DATABASE IF EXISTS {self.template} WITH (FORCE)")
        self._execute(f"CREATE DATABASE {self.template}")
        engine = create_engine(self.url_of(self.template).split("?")[0])
        with engine.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {SCHEMA}"))
        engine.dispose()
        upgrade(self.url_of(self.template))
        # No autovacuum in a test's database: under the suite's load an autovacuum ANALYZE could
        # sit on a snapshot for seconds at an unpredictable moment, and while it does no page can be
        # pruned (the HOT-update tests then saw every update leave its page). A test's statistics
        # come from the code's own ANALYZE after bulk changes (sql.refresh_statistics).
        engine = create_engine(self.url_of(self.template))
        with engine.begin() as connection:
            for table in connection.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = :schema"), {"schema": SCHEMA}
            ).scalars():
                connection.execute(text(f'ALTER TABLE "{table}" SET (autovacuum_enabled = off)'))
        engine.dispose()
        self._ready = True

    def fresh(self) -> str:
        with self._lock:
            if not self._ready:
                self._make_template()
            self._count += 1
            name = f"{self.base}_{WORKER}_{self._count}"
        self._execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self._execute(f"CREATE DATABASE {name} TEMPLATE {self.template}")
        return self.url_of(name)

    def fresh_empty(self) -> str:
        """A new database with nothing in it (dropped with the run's others by drop())."""
        with self._lock:
            self._count += 1
            name = f"{self.base}_{WORKER}_{self._count}"
        self._execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self._execute(f"CREATE DATABASE {name}")
        return self.url_of(name)

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1].split("?")[0]
        self._execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def close(self) -> None:
        if self._ready:
            self._execute(f"DROP DATABASE IF EXISTS {self.template} WITH (FORCE)")
        self._admin.dispose()


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases(_postgres_url())
    yield databases
    databases.close()


@pytest.fixture(scope="session")
def sqlite_template() -> Path:
    """A SQLite file migrated once; each test copies it."""
    path = _STATE / f"template-{WORKER}.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "nightshift.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    url = databases.fresh()
    yield url
    databases.drop(url)


@pytest.fixture
def postgres_url(postgres_databases: PostgresDatabases) -> Iterator[str]:
    url = postgres_databases.fresh()
    yield url
    postgres_databases.drop(url)


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def sample_spec() -> ProjectSpec:
    return load_spec(SAMPLES / "spec.yaml")


@pytest.fixture
def project(sessions: sessionmaker[Session], sample_spec: ProjectSpec) -> ProjectSpec:
    """The sample project applied and the sample experts imported."""
    rows, errors = parse_experts(SAMPLES / "experts.jsonl")
    assert not errors
    with transaction(sessions) as session:
        apply_spec(session, sample_spec)
        import_experts(session, rows)
    return sample_spec


@pytest.fixture
def prefect_server_database(postgres_databases: PostgresDatabases) -> Iterator[str]:
    """An asyncpg URL of a database for a Prefect server of a test's own: a copy of the run's
    migrated Prefect template when there is one (seconds), else empty (the server migrates it)."""
    from tests.servers import prefect

    with postgres_databases._lock:
        postgres_databases._count += 1
        name = f"{postgres_databases.base}_{WORKER}_prefect_{postgres_databases._count}"
    try:
        url = prefect.copy_of_template(postgres_databases.url, name)
    except Exception:
        prefect.drop(postgres_databases.url, name)
        postgres_databases._execute(f"CREATE DATABASE {name}")
        url = prefect.asyncpg_url(postgres_databases.url, name)
    yield url
    prefect.drop(postgres_databases.url, name)


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """A real Prefect API: the run's shared server when there is one, else a temporary one."""
    if "PREFECT_API_URL" in os.environ:
        yield
        return
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture
def webhook_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    secret = new_webhook_secret()
    monkeypatch.setenv("ACME_WEBHOOK_SECRET", secret)
    return secret


@pytest.fixture
def receiver(webhook_secret: str) -> Iterator[WebhookReceiver]:
    with WebhookReceiver(webhook_secret) as server:
        yield server


@pytest.fixture
def app_env(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """Point the process (CLI, flows, tasks) at this test's database and state folder."""
    from tasks.runtime import reset_resources

    monkeypatch.setenv("NIGHTSHIFT_DATABASE_URL", db_url)
    monkeypatch.setenv("NIGHTSHIFT_DELIVERY_DIR", str(tmp_path / "deliveries"))
    reset_resources()
    yield db_url
    reset_resources()


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackStandIn]:
    """The real slack-sdk client, pointed at a stand-in Slack Web API."""
    from tasks.runtime import reset_resources

    with SlackStandIn() as server:
        monkeypatch.setenv("NIGHTSHIFT_SLACK_TOKEN", "xoxb-pipeline-secret")
        monkeypatch.setenv("NIGHTSHIFT_SLACK_BASE_URL", server.base_url)
        reset_resources()
        yield server
        reset_resources()


@pytest.fixture
def model_server() -> Iterator[ModelServerThread]:
    """The local model server on 127.0.0.1; a timeout fault hangs 3 s (clients give up sooner)."""
    with ModelServerThread(hang_seconds=3) as server:
        yield server


def with_generation(spec: ProjectSpec, url: str, **endpoint: object) -> ProjectSpec:
    """The spec with one model endpoint answering its prompts (the local server's by default)."""
    data = spec.model_dump(mode="json")
    data["project"]["generation"] = {
        "prompt_field": "prompt",
        "context_field": "context",
        "endpoints": [{"name": "local", "base_url": url, "model": "nightshift-sim", **endpoint}],
    }
    return ProjectSpec.model_validate(data)
