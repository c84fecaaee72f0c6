from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from app.receiver import WebhookReceiver
from nightshift.clients import HttpxPoster
from nightshift.db import transaction
from nightshift.delivery import (
    check_webhook_url,
    new_webhook_secret,
    pseudonym,
    send_message,
    settle_deliveries,
    sign,
    write_delivery,
)
from nightshift.errors import NightshiftError
from nightshift.models import Batch, Client, DeliveryAttempt, DeliveryMessage, utcnow
from tests.conftest import SAMPLES
from tests.nightshift.test_ingest import ingest_file

ALLOW = ["127.0.0.1"]


def test_signatures_verify_with_the_standardwebhooks_package_during_a_rotation() -> None:
    old, new = new_webhook_secret(), new_webhook_secret()
    now = dt.datetime.now(dt.UTC)
    body = json.dumps({"records": [1, 2]})
    header = sign([old, new], "msg_1", now, body)
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": header,
    }
    assert len(header.split()) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers) == {"records": [1, 2]}


def test_pseudonyms_are_stable_per_client_and_reveal_nothing() -> None:
    assert pseudonym(1, 42) == pseudonym(1, 42)
    assert pseudonym(1, 42) != pseudonym(2, 42)
    assert "42" not in pseudonym(1, 42)[4:]


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://example.com/hook", "must be https"),
        ("https://10.0.0.5/hook", "not a public address"),
        ("https://169.254.169.254/latest", "not a public address"),
        ("ftp://127.0.0.1/x", "must be https"),
    ],
)
def test_unsafe_webhook_urls_are_refused(url: str, error: str) -> None:
    with pytest.raises(NightshiftError, match=error):
        check_webhook_url(url, ALLOW)


def test_allowed_webhook_urls() -> None:
    check_webhook_url("https://hooks.client.example/nightshift", ALLOW)
    check_webhook_url("http://127.0.0.1:8080/hook", ALLOW)


def _outbox(sessions, receiver_url: str, tmp_path, records: int = 3, page: int = 2) -> list[int]:
    batch_id, _ = ingest_file(sessions, SAMPLES / "items.jsonl")
    with transaction(sessions) as session:
        session.get_one(Client, 1).webhook_url = receiver_url
        session.get_one(Batch, batch_id).status = "passed"
        rows = [{"item_id": n, "external_id": f"e{n}", "answer": {"rating": 4}} for n in range(records)]
        write_delivery(session, batch_id, rows, tmp_path, page, [])
    with sessions() as session:
        return list(session.scalars(select(DeliveryMessage.id).order_by(DeliveryMessage.page)))


def test_failed_attempts_are_recorded_and_scheduled_and_410_kills_the_message(
    sessions, project, webhook_secret, tmp_path
) -> None:
    answers = {1: (500, {}), 2: (429, {"Retry-After": "120"}), 3: (410, {})}
    with WebhookReceiver(webhook_secret, lambda n: answers.get(n)) as receiver:
        [first, second] = _outbox(sessions, receiver.url, tmp_path)
        poster = HttpxPoster(5)
        now = utcnow()
        with transaction(sessions) as session:
            assert send_message(session, first, poster, [webhook_secret], now, ALLOW) == "retrying"
        with transaction(sessions) as session:
            assert send_message(session, second, poster, [webhook_secret], now, ALLOW) == "retrying"
        with transaction(sessions) as session:
            assert send_message(session, first, poster, [webhook_secret], now, ALLOW) == "dead"
        with transaction(sessions) as session:
            assert send_message(session, second, poster, [webhook_secret], now, ALLOW) == "delivered"
        with sessions() as session:
            retried = session.get_one(DeliveryMessage, second)
            attempts = session.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.id)).all()
        assert [a.status_code for a in attempts] == [500, 429, 410, 204]
        assert [a.error for a in attempts] == ["HTTP 500", "HTTP 429", "HTTP 410", None]
        assert retried.attempt_count == 2
    # 429 asked for 120 s: the retry was scheduled no sooner (SQLite hands back naive UTC).
    scheduled = retried.next_attempt_at.replace(tzinfo=dt.UTC)
    assert scheduled - now >= dt.timedelta(seconds=120)
    assert len(receiver.log.verified) == 1
    with transaction(sessions) as session:
        assert settle_deliveries(session) == [(1, "dead")]


def test_a_retry_keeps_its_webhook_id_and_the_receiver_sees_every_record_once(
    sessions, project, webhook_secret, tmp_path
) -> None:
    with WebhookReceiver(webhook_secret, lambda n: (503, {}) if n == 1 else None) as receiver:
        ids = _outbox(sessions, receiver.url, tmp_path, records=5, page=2)
        poster = HttpxPoster(5)
        for _ in range(2):
            for message_id in ids:
                with transaction(sessions) as session:
                    send_message(session, message_id, poster, [webhook_secret], utcnow(), ALLOW)
    assert sorted(receiver.log.unique_records()) == [f"e{n}" for n in range(5)]
    with transaction(sessions) as session:
        assert settle_deliveries(session) == [(1, "delivered")]
        assert session.get_one(Batch, 1).status == "delivered"


def test_a_wrong_secret_is_rejected_by_the_receiver(sessions, project, webhook_secret, tmp_path) -> None:
    with WebhookReceiver(webhook_secret) as receiver:
        [message_id, *_] = _outbox(sessions, receiver.url, tmp_path)
        with transaction(sessions) as session:
            status = send_message(session, message_id, HttpxPoster(5), [new_webhook_secret()], utcnow(), ALLOW)
    assert status == "retrying"
    assert receiver.log.rejected == 1 and receiver.log.verified == []
