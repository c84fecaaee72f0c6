"""Delivery from the CLI: deliver, history, redelivery, re-aggregation, endpoints and secret rotation."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from app.cli import app
from app.receiver import WebhookReceiver
from nightshift.delivery.endpoints import new_webhook_secret
from nightshift.experts.registry import import_experts, parse_experts
from nightshift.platform.db import make_engine, make_sessionmaker, transaction
from nightshift.platform.errors import NightshiftError
from nightshift.platform.models import Batch, Client, Expert
from nightshift.projects.registry import apply_spec
from nightshift.projects.spec import load_spec
from tests.app.test_cli_errors import env, nightshift, one_line_error  # noqa: F401  (env is a fixture)
from tests.conftest import SAMPLES
from tests.nightshift.delivery.test_delivery import run_to_passed


def _cli(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    # stdout alone: a warning on stderr (Slack unset, said once per process) is not the answer.
    return result.stdout


def test_deliver_then_redeliver_and_reaggregate_as_new_versions(
    app_env, prefect_api, webhook_secret, receiver: WebhookReceiver
) -> None:
    sessions = make_sessionmaker(make_engine(app_env))
    experts, _ = parse_experts(SAMPLES / "experts.jsonl")
    with transaction(sessions) as session:
        apply_spec(session, load_spec(SAMPLES / "spec.yaml"))
        import_experts(session, experts)
        session.get_one(Client, 1).webhook_url = receiver.url
    batch = run_to_passed(sessions)

    first = json.loads(_cli("deliver", "--batch", str(batch), "--json"))
    assert [(s["version"], s["status"]) for s in first["settled"]] == [(1, "delivered")]
    assert first["sent"]["records_delivered"] == 228 and first["sent"]["sign_seconds"] >= 0

    again = _cli("redeliver", "--batch", str(batch), "--reason", "client lost v1")
    assert "batch 1 v2: delivered, 228 records" in again
    events = {m.body["manifest"]["event"] for m in receiver.log.verified}
    assert events == {"batch.delivered", "batch.redelivered"}
    v2 = next(m.body["manifest"] for m in receiver.log.verified if m.body["manifest"]["version"] == 2)
    assert v2["reason"] == "client lost v1" and v2["changes"]["unchanged"] == 228

    with transaction(sessions) as session:
        for expert in session.scalars(select(Expert)):
            expert.reliability = round(0.3 + (expert.id * 7 % 60) / 100, 4)
    reaggregated = _cli("reaggregate", "--batch", str(batch))
    assert "final answers changed" in reaggregated and "v3: delivered" in reaggregated
    history = json.loads(_cli("deliveries", "--batch", str(batch), "--json"))
    assert [h["version"] for h in history] == [3, 2, 1]
    assert history[0]["reason"].startswith("re-aggregated") and history[0]["changes"]["changed"] > 0
    assert all(h["pages"] == h["pages_delivered"] for h in history)
    assert "v1 delivered: 228 records" in _cli("deliveries", "--batch", str(batch))
    # A batch still on its way cannot be sent again.
    with transaction(sessions) as session:
        session.execute(update(Batch).values(status="in_review"))
    with pytest.raises(NightshiftError, match="only a delivered or failed batch"):
        _cli("redeliver", "--batch", str(batch), "--reason", "x")


def test_a_secret_rotation_signs_with_both_then_the_new_one(app_env, prefect_api, monkeypatch) -> None:
    from prefect.blocks.system import Secret

    from tasks.runtime import PrefectSecretResolver

    # A block name of this test's own: the run's Prefect server is shared by parallel tests.
    block = f"acme-webhook-rotation-{uuid.uuid4().hex[:12]}"
    old = new_webhook_secret()
    PrefectSecretResolver().store(f"prefect:{block}", [old])
    spec = load_spec(SAMPLES / "spec.yaml")
    spec = spec.model_copy(
        update={
            "client": spec.client.model_copy(
                update={
                    "webhook_secret": spec.client.webhook_secret.model_copy(
                        update={"env": None, "prefect_secret": block}
                    )
                }
            )
        }
    )
    sessions = make_sessionmaker(make_engine(app_env))
    with transaction(sessions) as session:
        apply_spec(session, spec)
    out = _cli("clients", "rotate-secret", "acme").splitlines()
    fresh = out[-1]
    assert fresh.startswith("whsec_") and fresh != old
    assert Secret.load(block).get() == f"{fresh} {old}"
    assert "rotation finished" in _cli("clients", "rotate-secret", "acme", "--finish")
    assert Secret.load(block).get() == fresh


def test_rotation_of_a_secret_in_the_environment_says_what_to_do(webhook_secret, env) -> None:  # noqa: F811
    sessions = make_sessionmaker(make_engine(env["NIGHTSHIFT_DATABASE_URL"]))
    with transaction(sessions) as session:
        apply_spec(session, load_spec(SAMPLES / "spec.yaml"))
    result = nightshift("clients", "rotate-secret", "acme", env=env)
    assert "set ACME_WEBHOOK_SECRET to the new secret, a space, then the old one" in one_line_error(result)
    assert webhook_secret not in result.stdout + result.stderr
    assert one_line_error(nightshift("clients", "enable-webhook", "nobody", env=env)) == "error: unknown client nobody"
