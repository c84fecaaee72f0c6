"""Sending the outbox: signatures, SSRF checks, and a real receiver on 127.0.0.1 that misbehaves."""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from app.receiver import Fault, WebhookReceiver
from nightshift.delivery import build, outbox
from nightshift.delivery.endpoints import enable_endpoint, new_webhook_secret, resolve_target
from nightshift.delivery.retries import MAX_ATTEMPTS
from nightshift.delivery.webhooks import SendStats, claim_due, send_due, sign
from nightshift.platform.addresses import Target
from nightshift.platform.db import transaction
from nightshift.platform.errors import NightshiftError
from nightshift.platform.models import Batch, Client, Delivery, DeliveryAttempt, DeliveryMessage, Item, utcnow
from nightshift.platform.outside import EnvSecretResolver, HttpxPoster, parse_retry_after
from nightshift.projects.registry import apply_spec
from nightshift.projects.spec import ProjectSpec
from tests.conftest import SAMPLES
from tests.nightshift.delivery.test_delivery import prepare, run_to_passed
from tests.nightshift.ingest.test_ingest import ingest_file

ALLOW = ["127.0.0.1"]


def test_signatures_verify_with_the_standardwebhooks_package_during_a_rotation() -> None:
    old, new = new_webhook_secret(), new_webhook_secret()
    now = dt.datetime.now(dt.UTC)
    body = json.dumps({"records": [1, 2]})
    header = sign([new, old], "msg_1", now, body)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": header}
    assert len(header.split()) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers) == {"records": [1, 2]}


def _resolves_to(*addresses: str):
    return lambda host, port: list(addresses)


@pytest.mark.parametrize(
    ("url", "addresses", "error"),
    [
        ("http://hooks.client.example/x", ["93.184.216.34"], "must be https"),
        ("ftp://127.0.0.1/x", [], "must be https"),
        ("https://user:pw@hooks.client.example/x", ["93.184.216.34"], "must not carry credentials"),
        ("https://10.0.0.5/x", [], r"10\.0\.0\.5 is private"),
        ("https://hooks.client.example/x", ["10.1.2.3"], r"10\.1\.2\.3 is private"),
        ("https://hooks.client.example/x", ["169.254.169.254"], "is link-local"),
        ("https://hooks.client.example/x", ["100.64.0.7"], "is non-public"),  # carrier-grade NAT
        ("https://hooks.client.example/x", ["::ffff:192.168.1.1"], r"192\.168\.1\.1 is private"),
        ("https://hooks.client.example/x", ["93.184.216.34", "127.0.0.1"], "is loopback"),
        ("https://hooks.client.example/x", [], "does not resolve"),
    ],
)
def test_unsafe_webhook_targets_are_refused(url: str, addresses: list[str], error: str) -> None:
    with pytest.raises(NightshiftError, match=error):
        resolve_target(url, ALLOW, _resolves_to(*addresses))


def test_a_public_host_is_pinned_to_the_address_that_was_checked() -> None:
    target = resolve_target("https://hooks.client.example:8443/in?x=1", ALLOW, _resolves_to("93.184.216.34"))
    assert target == Target("https://93.184.216.34:8443/in?x=1", "hooks.client.example:8443", "hooks.client.example")


def test_the_real_resolver_refuses_a_name_for_loopback_unless_allowlisted() -> None:
    with pytest.raises(NightshiftError, match="is loopback"):
        resolve_target("https://localhost/hook", [])
    assert resolve_target("http://localhost:9/hook", ["localhost"]).url == "http://localhost:9/hook"


def test_retry_after_as_seconds_or_as_a_date() -> None:
    now = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("Tue, 24 Nov 2026 12:30:00 GMT", now) == 1800.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("999999999", now) == 86_400.0


def test_the_poster_connects_to_the_target_and_keeps_the_host_name(receiver: WebhookReceiver) -> None:
    target = Target(receiver.url, "hooks.client.example", "hooks.client.example")
    assert HttpxPoster(5).post(target, {}, b"{}").status_code == 401  # unsigned: the receiver refuses
    assert receiver.hosts == ["hooks.client.example"]


def test_a_request_cut_off_mid_body_is_neither_verified_nor_rejected(receiver: WebhookReceiver) -> None:
    where = urlsplit(receiver.url)
    with socket.create_connection((where.hostname, where.port), timeout=5) as sender:
        # The sender dies half-way through its body, as a killed delivery process does.
        sender.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"{" * 40)
        sender.shutdown(socket.SHUT_WR)
        assert sender.recv(1024) == b""  # no answer: the request never reached the application
    assert (receiver.log.incomplete, receiver.log.rejected, receiver.log.verified) == (1, 0, [])


class Clock:
    """The outbox's clock, moved on by hand so retries hours apart run in a moment."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> dt.datetime:
        return self.now


def _outbox(sessions, url: str, tmp_path: Path, page_bytes: int = 24 * 1024) -> int:
    batch_id = run_to_passed(sessions)
    with transaction(sessions) as session:
        session.get_one(Client, 1).webhook_url = url
    prepare(sessions, batch_id, build.DeliveryOptions(directory=tmp_path / "store", page_bytes=page_bytes))
    return batch_id


def _send(sessions, clock: Clock, timeout: float = 5.0, rounds: int = 1, step_hours: float = 11) -> SendStats:
    stats = SendStats()
    for _ in range(rounds):
        send_due(sessions, HttpxPoster(timeout), EnvSecretResolver().resolve, ALLOW, stats, clock=clock)
        clock.now += dt.timedelta(hours=step_hours)
    return stats


def _statuses(sessions) -> dict[str, int]:
    with sessions() as session:
        return dict(
            session.execute(select(DeliveryMessage.status, func.count()).group_by(DeliveryMessage.status)).all()
        )


def test_every_record_arrives_verified_through_errors_timeouts_drops_and_throttling(
    sessions, project, webhook_secret, tmp_path, caplog
) -> None:
    faults = {
        1: Fault(500),
        2: Fault(delay_seconds=1.0),  # beyond the sender's timeout
        3: Fault(drop=True),
        4: Fault(429, {"Retry-After": "7200"}),
        5: Fault(delay_seconds=0.2, accept=True),  # slow but fine
        6: Fault(502),
        7: Fault(delay_seconds=1.0, accept=True),  # taken, but too late for the sender: sent again
        9: Fault(503, {"Retry-After": "60"}),
    }
    caplog.set_level(logging.DEBUG)
    with WebhookReceiver(webhook_secret, faults.get) as receiver:
        batch_id = _outbox(sessions, receiver.url, tmp_path)
        clock = Clock()
        _send(sessions, clock, timeout=0.5, rounds=12)
    with transaction(sessions) as session:
        assert outbox.settle_deliveries(session) == [(1, "delivered")]
        expected = set(
            session.scalars(select(Item.external_id).where(Item.batch_id == batch_id, Item.is_gold.is_(False)))
        )
        attempts = session.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.id)).all()
        pages = session.scalars(select(DeliveryMessage)).all()
    assert receiver.log.rejected == 0
    assert set(receiver.log.unique_records()) == expected
    # The late-but-taken page arrived twice under one webhook-id: the id is what de-duplicates it.
    ids = [m.webhook_id for m in receiver.log.verified]
    assert len(ids) == len(set(ids)) + 1
    errors = [a.error for a in attempts if a.error]
    assert {"HTTP 500", "timeout", "RemoteProtocolError", "HTTP 429", "HTTP 502", "HTTP 503"} <= set(errors)
    assert sum(p.attempt_count for p in pages) == len(attempts)
    assert all(a.latency_ms >= 0 for a in attempts)
    assert webhook_secret not in caplog.text
    assert not any(webhook_secret in (a.error or "") for a in attempts)


def test_a_failing_endpoint_defers_its_other_pages_and_retry_after_is_honoured(
    sessions, project, webhook_secret, tmp_path
) -> None:
    with WebhookReceiver(webhook_secret, lambda n: Fault(429, {"Retry-After": "7200"}) if n == 1 else None) as r:
        _outbox(sessions, r.url, tmp_path)
        clock = Clock()
        stats = _send(sessions, clock)
        with sessions() as session:
            pages = session.scalars(select(DeliveryMessage).order_by(DeliveryMessage.page)).all()
        first, rest = pages[0], pages[1:]
        # One request, one 429: the endpoint was not hammered with the rest of its pages.
        assert r.requests == 1 and stats.outcomes["retrying"] == 1 and "delivered" not in stats.outcomes
        assert first.attempt_count == 1 and all(p.attempt_count == 0 for p in rest)
        waited = first.next_attempt_at.replace(tzinfo=dt.UTC) - (clock.now - dt.timedelta(hours=11))
        assert waited >= dt.timedelta(seconds=7200)
        _send(sessions, clock)
    assert _statuses(sessions) == {"delivered": len(pages)}


def test_410_disables_the_endpoint_and_its_pages_wait_until_ops_enable_it(
    sessions, project, webhook_secret, tmp_path
) -> None:
    with WebhookReceiver(webhook_secret, lambda n: Fault(410) if n == 1 else None) as receiver:
        _outbox(sessions, receiver.url, tmp_path)
        clock = Clock()
        stats = _send(sessions, clock, rounds=3)
        assert stats.disabled_clients == [1] and receiver.requests == 1
        with sessions() as session:
            client = session.get_one(Client, 1)
            assert client.webhook_disabled_at is not None and client.webhook_disabled_reason == "HTTP 410 Gone"
        assert "delivered" not in _statuses(sessions) and "dead" not in _statuses(sessions)
        with transaction(sessions) as session:
            waiting = enable_endpoint(session, session.get_one(Client, 1), clock.now)
        _send(sessions, clock)
    assert waiting == sum(_statuses(sessions).values())
    assert set(_statuses(sessions)) == {"delivered"}


def test_redirects_are_not_followed(sessions, project, webhook_secret, tmp_path) -> None:
    with WebhookReceiver(webhook_secret) as elsewhere:
        moved = Fault(307, {"Location": elsewhere.url})
        with WebhookReceiver(webhook_secret, lambda n: moved) as receiver:
            _outbox(sessions, receiver.url, tmp_path)
            _send(sessions, Clock())
    assert elsewhere.requests == 0
    with sessions() as session:
        assert session.scalars(select(DeliveryAttempt.error)).all() == ["HTTP 307"]


def test_after_the_last_attempt_the_page_is_dead_lettered_and_the_batch_failed(
    sessions, project, webhook_secret, tmp_path
) -> None:
    with WebhookReceiver(webhook_secret, lambda n: Fault(500)) as receiver:
        batch_id = _outbox(sessions, receiver.url, tmp_path, page_bytes=1024 * 1024)
        _send(sessions, Clock(), rounds=MAX_ATTEMPTS + 2)
    assert receiver.requests == MAX_ATTEMPTS
    with transaction(sessions) as session:
        assert outbox.settle_deliveries(session) == [(1, "dead")]
        assert session.get_one(Batch, batch_id).status == "failed"
        # A dead-lettered batch can be sent again, whole, as a new version.
        outbox.request_redelivery(session, batch_id, "endpoint fixed", "test")


def test_a_sender_that_dies_leaves_its_pages_leased_then_due_again(sessions, project, webhook_secret, tmp_path) -> None:
    _outbox(sessions, "http://127.0.0.1:9/nowhere", tmp_path)
    now = utcnow()
    with transaction(sessions) as session:
        taken = claim_due(session, now, 2, 60.0)
    with transaction(sessions) as session:
        # Another sender, meanwhile, does not get the same pages.
        others = claim_due(session, now, 100, 60.0)
    assert {o.message_id for o in taken}.isdisjoint(o.message_id for o in others)
    with transaction(sessions) as session:
        assert claim_due(session, now, 100, 60.0) == []
        again = claim_due(session, now + dt.timedelta(seconds=61), 100, 60.0)
    assert {o.message_id for o in again} == {o.message_id for o in taken + others}


def _second_client(sessions, url: str) -> None:
    raw = yaml.safe_load((SAMPLES / "spec.yaml").read_text())
    raw["client"] |= {
        "slug": "globex",
        "name": "Globex",
        "webhook_url": url,
        "webhook_secret": {"env": "GLOBEX_SECRET"},
    }
    raw["project"]["slug"] = "globex-scenarios"
    with transaction(sessions) as session:
        apply_spec(session, ProjectSpec.model_validate(raw))


def test_a_client_never_receives_another_clients_data(sessions, project, webhook_secret, tmp_path, monkeypatch) -> None:
    globex_secret = new_webhook_secret()
    monkeypatch.setenv("GLOBEX_SECRET", globex_secret)
    with WebhookReceiver(webhook_secret) as acme, WebhookReceiver(globex_secret) as globex:
        _second_client(sessions, globex.url)
        acme_batch = _outbox(sessions, acme.url, tmp_path)
        globex_items = tmp_path / "globex.jsonl"
        globex_items.write_text(
            "".join(
                json.dumps(json.loads(line) | {"external_id": "g-" + json.loads(line)["external_id"]}) + "\n"
                for line in (SAMPLES / "items.jsonl").read_text().splitlines()
            )
        )
        globex_batch = ingest_file(sessions, globex_items, project="globex-scenarios")[0]
        with transaction(sessions) as session:
            session.get_one(Batch, globex_batch).status = "delivered"  # not run: its data must stay home
        _send(sessions, Clock())
    assert acme.log.rejected == 0 and globex.requests == 0
    with sessions() as session:
        assert session.scalars(select(Delivery.client_id)).all() == [1]
        mine = set(session.scalars(select(Item.external_id).where(Item.batch_id == acme_batch)))
    received = json.dumps([m.body for m in acme.log.verified])
    assert set(acme.log.unique_records()) <= mine and "g-" not in received
    assert all(m.body["manifest"]["client"] == "acme" for m in acme.log.verified)


def test_an_endpoint_with_its_own_retry_schedule_is_retried_on_it_then_dead_lettered(
    sessions, project, webhook_secret, tmp_path
) -> None:
    """The client's spec gives its endpoint two retries, 60 s and 120 s apart: three attempts in all,
    each wait as long as the schedule says (with its jitter), not the service's seven."""
    with WebhookReceiver(webhook_secret, lambda n: Fault(500)) as receiver:
        _outbox(sessions, receiver.url, tmp_path, page_bytes=1024 * 1024)
        with transaction(sessions) as session:
            session.get_one(Client, 1).webhook_retry_schedule = [60, 120]
        clock = Clock()
        waits = []
        for _ in range(5):
            send_due(sessions, HttpxPoster(5), EnvSecretResolver().resolve, ALLOW, SendStats(), clock=clock)
            with sessions() as session:
                page = session.scalars(select(DeliveryMessage)).first()
            waits.append((page.next_attempt_at.replace(tzinfo=dt.UTC) - clock.now).total_seconds())
            clock.now += dt.timedelta(minutes=10)
    assert receiver.requests == 3
    assert 60 <= waits[0] <= 72 and 120 <= waits[1] <= 144
    assert _statuses(sessions) == {"dead": 1}


@pytest.mark.parametrize(
    "schedule",
    [[], [0], [5] * 21, [90_000], [86_400] * 4, ["soon"]],
)
def test_a_retry_schedule_out_of_bounds_is_refused_in_a_spec_and_in_the_settings(schedule, monkeypatch) -> None:
    from pydantic import ValidationError

    from nightshift.platform.errors import SpecError
    from nightshift.platform.settings import Settings
    from nightshift.projects.spec import parse_spec

    data = yaml.safe_load((SAMPLES / "spec.yaml").read_text())
    data["client"]["webhook_retry_schedule"] = schedule
    with pytest.raises(SpecError, match="webhook_retry_schedule"):
        parse_spec(data)
    monkeypatch.setenv("NIGHTSHIFT_WEBHOOK_RETRY_SCHEDULE", json.dumps(schedule))
    with pytest.raises(ValidationError):
        Settings()


def test_the_service_wide_schedule_comes_from_the_settings(monkeypatch) -> None:
    from nightshift.platform.settings import Settings

    monkeypatch.setenv("NIGHTSHIFT_WEBHOOK_RETRY_SCHEDULE", "[10, 20, 30]")
    assert Settings().webhook_retry_schedule == [10, 20, 30]
