"""The ops outbox against a stand-in Slack Web API (reached by the real slack-sdk) and a real
database: one message per event, bursts grouped, repeats said once, Slack down loses nothing."""

from __future__ import annotations

import datetime as dt
import json
import socket

from sqlalchemy import select

from nightshift.notify import messages as notify
from nightshift.notify.messages import SlackNotifier
from nightshift.notify.ops_outbox import BACKOFF, MAX_ATTEMPTS, enqueue, flush
from nightshift.platform.db import transaction
from nightshift.platform.models import OpsMessage
from tests.servers.slack import SlackStandIn

TOKEN = "xoxb-outbox-secret"
NOW = dt.datetime(2026, 11, 24, 2, 30, tzinfo=dt.UTC)
DEADLINE = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/api/"


def test_every_event_says_what_happened_and_what_comes_next_with_a_text_fallback() -> None:
    failed = notify.flow_failed(
        "review", "brave-otter", "OperationalError: lost connection", "http://ui/runs/flow-run/9"
    )
    assert failed.blocks[-1]["elements"][0]["url"] == "http://ui/runs/flow-run/9"
    assert "Open the run in Prefect: http://ui/runs/flow-run/9" in failed.text

    gate = notify.gate_failed("submissions", 4, 30, 120, "time on task ≥ 60 s", "rejected work goes back")
    assert gate.text.splitlines() == [
        "Gate submissions failed for batch 4",
        "Failing: 30 of 120 (25%)",
        "Threshold: time on task ≥ 60 s",
        "Next: rejected work goes back",
    ]
    late = notify.batch_at_risk("acme", 4, DEADLINE, DEADLINE + dt.timedelta(hours=7, minutes=30), 80)
    assert "Projected finish: 2026-11-25 19:30 UTC (7.5 h late)" in late.text
    assert "Open items: 80" in late.text

    digest = notify.client_digest(
        "acme",
        NOW.date(),
        [
            {
                "batch_id": 4,
                "project": "acme-scenarios",
                "status": "in_review",
                "items": 240,
                "done": 200,
                "in_review": 40,
                "delivered": 0,
                "agreement": 0.812,
                "cost": "1234.50",
                "budget": "50000",
            }
        ],
    )
    assert digest.title == "Nightly digest for acme: 2026-11-24"
    assert digest.lines == (
        "*Batch 4* (acme-scenarios, in_review): 240 in, 200 done, 40 in review, 0 delivered; "
        "agreement 0.81; cost $1234.50 of $50000",
    )
    for message in (failed, gate, late, digest):
        assert message.blocks[0]["type"] == "header" and message.text


def test_a_burst_of_one_kind_goes_out_as_one_message_per_channel(sessions) -> None:
    with transaction(sessions) as session:
        for batch in range(5):
            enqueue(session, "#ops", notify.gate_failed("submissions", batch, 1, 10, "t", "n"), NOW)
        enqueue(session, "#ops", notify.batch_delivered("acme", "p", 1, 10, "/f"), NOW)
        for batch in range(2):
            enqueue(session, "#acme", notify.unassignable(batch, 3, "no expert"), NOW)
    with SlackStandIn() as slack, transaction(sessions) as session:
        report = flush(session, SlackNotifier(TOKEN, slack.base_url, min_interval_seconds=0), NOW)
    titles = [(m["channel"], m["text"].splitlines()[0]) for m in slack.messages]
    assert sorted(titles) == [
        ("#acme", "3 items of batch 0 cannot be assigned"),
        ("#acme", "3 items of batch 1 cannot be assigned"),
        ("#ops", "5 gate failures"),
        ("#ops", "Delivered batch 1 to acme"),
    ]
    grouped = next(m for m in slack.messages if m["text"].startswith("5 gate failures"))
    assert grouped["text"].count("Gate submissions failed for batch") == 5
    assert (report.sent, report.grouped) == (8, 5)
    with sessions() as session:
        assert set(session.scalars(select(OpsMessage.status))) == {"sent"}


def test_the_same_event_reported_twice_is_said_once(sessions) -> None:
    late = notify.batch_at_risk("acme", 4, DEADLINE, DEADLINE + dt.timedelta(hours=3), 10)
    with transaction(sessions) as session:
        assert enqueue(session, "#acme", late, NOW)
        assert not enqueue(session, "#acme", late)  # a re-run of the nightly flow
    with SlackStandIn() as slack, transaction(sessions) as session:
        flush(session, SlackNotifier(TOKEN, slack.base_url), NOW)
        flush(session, SlackNotifier(TOKEN, slack.base_url), NOW + dt.timedelta(hours=1))
    assert len(slack.messages) == 1


def test_slack_down_keeps_the_message_and_a_later_flush_sends_it(sessions, caplog) -> None:
    with transaction(sessions) as session:
        enqueue(session, "#ops", notify.unassignable(7, 2, "no expert speaks ja"), NOW)
    down = SlackNotifier(TOKEN, _closed_port_url())
    with transaction(sessions) as session:
        report = flush(session, down, NOW)
    assert (report.sent, report.failed) == (0, 1)
    with sessions() as session:
        row = session.scalars(select(OpsMessage)).one()
        assert (row.status, row.attempts) == ("pending", 1)
    with SlackStandIn() as slack:
        up = SlackNotifier(TOKEN, slack.base_url)
        with transaction(sessions) as session:
            assert flush(session, up, NOW + BACKOFF[0] / 2).sent == 0  # not due yet
        with transaction(sessions) as session:
            assert flush(session, up, NOW + BACKOFF[0]).sent == 1
    assert [m["text"].splitlines()[0] for m in slack.messages] == ["2 items of batch 7 cannot be assigned"]
    assert TOKEN not in caplog.text


def test_a_message_slack_never_takes_is_given_up_and_logged(sessions, caplog) -> None:
    with transaction(sessions) as session:
        enqueue(session, "#ops", notify.unassignable(8, 1, "x"), NOW)
    down = SlackNotifier(TOKEN, _closed_port_url())
    at = NOW
    for _ in range(MAX_ATTEMPTS):
        with transaction(sessions) as session:
            flush(session, down, at)
        at += dt.timedelta(days=1)
    with sessions() as session:
        row = session.scalars(select(OpsMessage)).one()
    assert (row.status, row.attempts) == ("dead", MAX_ATTEMPTS)
    assert "given up after" in caplog.text


def test_no_secret_reaches_slack_even_inside_an_error_text(sessions) -> None:
    leaked = "POST failed: secret whsec_c2VjcmV0c2VjcmV0 rejected; bot token xoxb-1-2-abc"
    with transaction(sessions) as session:
        enqueue(session, "#ops", notify.flow_failed("deliver", "run-1", leaked, "http://ui/runs/flow-run/1"), NOW)
        enqueue(session, "#ops", notify.delivery_dead("acme", 3, leaked), NOW)
    with SlackStandIn() as slack, transaction(sessions) as session:
        flush(session, SlackNotifier(TOKEN, slack.base_url, min_interval_seconds=0), NOW)
    sent = json.dumps(slack.messages)
    assert len(slack.messages) == 2
    assert "whsec_" not in sent and "xoxb-" not in sent and "[redacted]" in sent
