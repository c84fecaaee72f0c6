"""Ops notifications from real flow runs on a real Prefect API, through a stand-in Slack Web API."""

from __future__ import annotations

import datetime as dt
import json
import socket

import pytest
from sqlalchemy import select

from flows.dispatch import DispatchParams, dispatch_flow
from flows.nightly import NightlyParams, nightly_flow
from nightshift.experts.registry import import_experts, parse_experts
from nightshift.notify import ops_outbox
from nightshift.notify.messages import SlackNotifier
from nightshift.platform.db import make_engine, make_sessionmaker, transaction
from nightshift.platform.models import OpsMessage, utcnow
from nightshift.projects.registry import apply_spec
from nightshift.projects.spec import load_spec
from nightshift.reports.status import batch_statuses
from tests.conftest import SAMPLES
from tests.nightshift.ingest.test_ingest import ingest_file
from tests.servers.slack import SlackStandIn


def _project(app_env: str, with_experts: bool = True, **changes: object):
    sessions = make_sessionmaker(make_engine(app_env))
    spec = load_spec(SAMPLES / "spec.yaml")
    spec = spec.model_copy(update={"project": spec.project.model_copy(update=changes)})
    with transaction(sessions) as session:
        apply_spec(session, spec)
        if with_experts:
            import_experts(session, parse_experts(SAMPLES / "experts.jsonl")[0])
    batch_id, _ = ingest_file(sessions, SAMPLES / "items.jsonl")
    return sessions, batch_id


def test_slack_down_never_fails_a_flow_and_the_message_goes_out_later(app_env, prefect_api, monkeypatch) -> None:
    from tasks.runtime import reset_resources

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/api/"
    monkeypatch.setenv("NIGHTSHIFT_SLACK_TOKEN", "xoxb-down-secret")
    monkeypatch.setenv("NIGHTSHIFT_SLACK_BASE_URL", closed)
    reset_resources()
    sessions, batch_id = _project(app_env, with_experts=False)  # nobody to assign: ops must hear

    state = dispatch_flow(DispatchParams(batch_id=batch_id), return_state=True)
    assert state.is_completed()
    with sessions() as session:
        [row] = session.scalars(select(OpsMessage)).all()
    assert (row.kind, row.status, row.attempts) == ("unassignable", "pending", 1)

    with SlackStandIn() as slack, transaction(sessions) as session:
        later = utcnow() + dt.timedelta(minutes=2)
        assert ops_outbox.flush(session, SlackNotifier("xoxb-down-secret", slack.base_url), later).sent == 1
    [message] = slack.messages
    assert message["text"].startswith(f"240 items of batch {batch_id} cannot be assigned")
    reset_resources()


def test_a_batch_projected_to_finish_after_its_deadline_warns_its_client_channel(app_env, prefect_api, slack) -> None:
    sessions, batch_id = _project(app_env, turnaround_hours=0.5)  # the pool works a few hours a night
    dispatch_flow(DispatchParams(batch_id=batch_id))
    with sessions() as session:
        [status] = batch_statuses(session, [batch_id])
    assert status.at_risk and status.projected_finish > status.deadline
    [warning] = [m for m in slack.messages if "may miss its deadline" in m["text"]]
    assert warning["channel"] == "#acme-deliveries"
    assert warning["text"].startswith(f"Batch {batch_id} for acme may miss its deadline")
    assert "h late" in warning["text"]


def test_the_slack_token_can_come_from_a_prefect_secret_block(app_env, prefect_api, monkeypatch) -> None:
    from prefect.blocks.system import Secret

    from nightshift.notify.messages import unassignable
    from tasks.runtime import reset_resources, resources

    Secret(value="xoxb-from-a-block").save("nightshift-slack-token", overwrite=True)
    with SlackStandIn() as slack:
        monkeypatch.delenv("NIGHTSHIFT_SLACK_TOKEN", raising=False)
        monkeypatch.setenv("NIGHTSHIFT_SLACK_TOKEN_SECRET", "nightshift-slack-token")
        monkeypatch.setenv("NIGHTSHIFT_SLACK_BASE_URL", slack.base_url)
        reset_resources()
        assert resources().notifier.send("#ops", unassignable(1, 1, "x"))
        reset_resources()
    assert slack.tokens == ["Bearer xoxb-from-a-block"]


@pytest.mark.slow(30)
def test_the_nightly_run_posts_one_digest_per_client_and_day(app_env, prefect_api, slack, receiver, tmp_path) -> None:
    _, batch_id = _project(app_env)
    nightly_flow(NightlyParams(drop_folder=str(tmp_path / "no-drops")))
    nightly_flow(NightlyParams(drop_folder=str(tmp_path / "no-drops")))
    digests = [m for m in slack.messages if m["text"].startswith("Nightly digest for acme")]
    assert len(digests) == 1
    [digest] = digests
    assert digest["channel"] == "#acme-deliveries"
    assert f"Batch {batch_id} (acme-scenarios, " in digest["text"]
    assert "240 in, 0 done" in digest["text"] and "cost $0.00 of $50000" in digest["text"]
    sent = json.dumps(slack.messages)
    assert "xoxb-" not in sent and "@experts.example" not in sent
