from __future__ import annotations

import itertools
import logging
import socket
import time

from nightshift.notify import messages as notify
from nightshift.notify.messages import LogNotifier, SlackNotifier
from tests.servers.slack import SlackStandIn

TOKEN = "xoxb-test-token-123"


def test_a_message_reaches_slack_with_blocks_and_a_text_fallback() -> None:
    with SlackStandIn() as slack:
        sent = SlackNotifier(TOKEN, slack.base_url).send(
            "#ops", notify.batch_delivered("acme", "acme-scenarios", 7, 228, "/d/records.jsonl")
        )
    assert sent
    [message] = slack.messages
    assert message["channel"] == "#ops"
    assert message["text"].startswith("Delivered batch 7 to acme")
    assert message["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Delivered batch 7 to acme"},
    }
    assert slack.tokens == [f"Bearer {TOKEN}"]


def test_rate_limits_are_honoured_with_retry_after() -> None:
    with SlackStandIn(rate_limit_first=1, retry_after=1) as slack:
        started = time.monotonic()
        sent = SlackNotifier(TOKEN, slack.base_url).send("#ops", notify.unassignable(1, 3, "no expert"))
    assert sent and len(slack.messages) == 1
    assert slack.requests[1][0] - slack.requests[0][0] >= 0.9
    assert time.monotonic() - started >= 0.9


def test_messages_to_one_channel_are_spaced_about_a_second_apart() -> None:
    with SlackStandIn() as slack:
        notifier = SlackNotifier(TOKEN, slack.base_url, min_interval_seconds=0.5)
        for n in range(3):
            notifier.send("#ops", notify.unassignable(n, 1, "x"))
    times = [t for t, _ in slack.requests]
    assert len(times) == 3
    assert all(b - a >= 0.45 for a, b in itertools.pairwise(times))


def test_slack_being_down_is_logged_and_never_raised(caplog) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    notifier = SlackNotifier(TOKEN, f"http://127.0.0.1:{port}/api/")
    with caplog.at_level(logging.WARNING, logger="nightshift.notify.messages"):
        assert notifier.send("#ops", notify.unassignable(1, 1, "x")) is False
    assert "Slack unreachable" in caplog.text
    assert TOKEN not in caplog.text


def test_secrets_never_reach_a_message() -> None:
    leaked = "webhook failed with whsec_c2VjcmV0c2VjcmV0 and token xoxb-123-abc"
    message = notify.flow_failed("deliver", "run-1", leaked, "http://ui/runs/1")
    assert "whsec_" not in message.text and "xoxb-" not in message.text
    assert "whsec_" not in str(message.blocks)


def test_without_a_token_notifications_go_to_the_log_once_warned(caplog) -> None:
    LogNotifier._warned = False
    with caplog.at_level(logging.INFO, logger="nightshift.notify.messages"):
        LogNotifier().send("#ops", notify.unassignable(1, 1, "x"))
        LogNotifier().send("#ops", notify.unassignable(2, 1, "x"))
    assert caplog.text.count("Slack is not configured") == 1
