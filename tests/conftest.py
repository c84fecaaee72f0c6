"""Shared fixtures: real databases (SQLite and PostgreSQL), a real Prefect API, real local servers."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# Before anything imports Prefect: keep its state and ours out of the developer's folders.
_STATE = Path(tempfile.mkdtemp(prefix="nightshift-tests-"))
os.environ["NIGHTSHIFT_HOME"] = str(_STATE)
os.environ.pop("NIGHTSHIFT_DATABASE_URL", None)
os.environ.pop("NIGHTSHIFT_SLACK_TOKEN", None)

from nightshift.settings import Settings  # noqa: E402

Settings().prepare_process_environment()

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from app.receiver import WebhookReceiver  # noqa: E402
from nightshift.db import make_engine, make_sessionmaker, transaction  # noqa: E402
from nightshift.experts import import_experts, parse_experts  # noqa: E402
from nightshift.migrate import upgrade  # noqa: E402
from nightshift.projects import apply_spec  # noqa: E402
from nightshift.spec import ProjectSpec, load_spec  # noqa: E402
from nightshift.webhooks import new_webhook_secret  # noqa: E402
from tests.servers.slack import SlackStandIn  # noqa: E402

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
POSTGRES_ENV = "NIGHTSHIFT_TEST_POSTGRES_URL"


def _postgres_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{POSTGRES_ENV} is not set: PostgreSQL tests must run in CI")
        pytest.skip(f"{POSTGRES_ENV} not set")
    return url


def _fresh_postgres_schema(url: str) -> str:
    """A new schema per test, selected through the connection's search_path."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'nightshift.db'}"
    else:
        url = _fresh_postgres_schema(_postgres_url())
    upgrade(url)
    return url


@pytest.fixture
def postgres_url(tmp_path: Path) -> str:
    url = _fresh_postgres_schema(_postgres_url())
    upgrade(url)
    return url


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


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
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
