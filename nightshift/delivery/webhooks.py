"""Webhook sending from the outbox: Standard Webhooks signatures, SSRF-safe targets, retries in the database.

Pages of one endpoint go one at a time and in order; endpoints go in parallel. A sender claims due
messages by moving their next attempt a lease into the future, so a crashed sender's messages come
due again by themselves and two senders never send the same page at once.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks.webhooks import Webhook

from nightshift.delivery.endpoints import resolve_target
from nightshift.delivery.retries import RETRY_SCHEDULE, next_attempt_delay
from nightshift.platform.addresses import Resolver, system_resolver
from nightshift.platform.db import transaction
from nightshift.platform.errors import NightshiftError
from nightshift.platform.models import Client, Delivery, DeliveryAttempt, DeliveryMessage, utcnow
from nightshift.platform.outside import PostResult, WebhookPoster


def sign(secrets_: Sequence[str], webhook_id: str, timestamp: dt.datetime, body: str) -> str:
    """Standard Webhooks signature header; several secrets (a rotation) give several signatures."""
    return " ".join(Webhook(secret).sign(webhook_id, timestamp, body) for secret in secrets_)


def page_body(event: str, manifest_json: str, page: int, pages: int, records_json: str) -> str:
    """The JSON a page is sent as, put together from stored parts (the manifest is shared by all)."""
    return (
        f'{{"type":{json.dumps(event)},"manifest":{manifest_json},'
        f'"page":{page},"pages":{pages},"records":{records_json}}}'
    )


@dataclass(frozen=True)
class Outgoing:
    message_id: int
    webhook_id: str
    client_id: int
    url: str
    secret_ref: str | None
    body: str
    record_count: int
    # Attempts before this one, as read under the claim's lease.
    attempt_count: int
    # Waits after each failed attempt for this endpoint: its own, or the service's setting.
    retry_schedule: tuple[int, ...] = RETRY_SCHEDULE

    @property
    def max_attempts(self) -> int:
        return len(self.retry_schedule) + 1


@dataclass
class Attempt:
    message: Outgoing
    status_code: int | None
    error: str | None
    retry_after_seconds: float | None
    latency_ms: float
    attempted_at: dt.datetime
    deferred: bool = False


@dataclass
class SendStats:
    sign_seconds: float = 0.0
    post_seconds: float = 0.0
    bookkeeping_seconds: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)
    disabled_clients: list[int] = field(default_factory=list)

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


def claim_due(
    session: Session,
    now: dt.datetime,
    limit: int,
    lease_seconds: float,
    batch_id: int | None = None,
    skip_clients: Collection[int] = (),
    retry_schedule: Sequence[int] = RETRY_SCHEDULE,
) -> list[Outgoing]:
    """Take up to `limit` due messages of enabled endpoints, oldest first, for one lease.
    retry_schedule: the service's, for endpoints without one of their own."""
    query = (
        select(DeliveryMessage.id)
        .join(Delivery, Delivery.id == DeliveryMessage.delivery_id)
        .join(Client, Client.id == Delivery.client_id)
        .where(
            DeliveryMessage.status.in_(("pending", "retrying")),
            DeliveryMessage.next_attempt_at <= now,
            Client.webhook_disabled_at.is_(None),
        )
        .order_by(DeliveryMessage.next_attempt_at, DeliveryMessage.id)
        .limit(limit)
        .with_for_update(of=DeliveryMessage, skip_locked=True)
    )
    if batch_id is not None:
        query = query.where(Delivery.batch_id == batch_id)
    if skip_clients:
        query = query.where(Client.id.not_in(list(skip_clients)))
    ids = list(session.scalars(query))
    if not ids:
        return []
    session.execute(
        update(DeliveryMessage)
        .where(DeliveryMessage.id.in_(ids))
        .values(next_attempt_at=now + dt.timedelta(seconds=lease_seconds))
    )
    rows = session.execute(
        select(
            DeliveryMessage.id,
            DeliveryMessage.webhook_id,
            DeliveryMessage.page,
            DeliveryMessage.records,
            DeliveryMessage.record_count,
            DeliveryMessage.attempt_count,
            Delivery.id,
            Delivery.page_count,
            Delivery.manifest,
            Client.id,
            Client.webhook_url,
            Client.webhook_secret_ref,
            Client.webhook_retry_schedule,
        )
        .join(Delivery, Delivery.id == DeliveryMessage.delivery_id)
        .join(Client, Client.id == Delivery.client_id)
        .where(DeliveryMessage.id.in_(ids))
        .order_by(DeliveryMessage.id)
    )
    manifests: dict[int, tuple[str, str]] = {}
    out = []
    default = tuple(retry_schedule)
    for row in rows:
        message_id, webhook_id, page, records, count, tries, delivery_id, pages, manifest, client_id, url, ref, own = (
            row
        )
        if delivery_id not in manifests:
            manifests[delivery_id] = (manifest["event"], json.dumps(manifest, sort_keys=True, ensure_ascii=False))
        event, manifest_json = manifests[delivery_id]
        body = page_body(event, manifest_json, page, pages, records)
        schedule = tuple(own) if own else default
        out.append(Outgoing(message_id, webhook_id, client_id, url or "", ref, body, count, tries, schedule))
    return out


def send_claimed(
    outgoing: Sequence[Outgoing],
    poster: WebhookPoster,
    secrets_of: Callable[[str], list[str]],
    http_allowlist: Sequence[str],
    stats: SendStats,
    resolver: Resolver = system_resolver,
    workers: int = 4,
) -> list[Attempt]:
    """Send claimed pages: one endpoint's pages in order, stopping at its first failure."""
    by_client: dict[int, list[Outgoing]] = {}
    for message in outgoing:
        by_client.setdefault(message.client_id, []).append(message)

    def one_endpoint(messages: list[Outgoing]) -> list[Attempt]:
        attempts: list[Attempt] = []
        failed = False
        for message in messages:
            now = dt.datetime.now(dt.UTC)
            if failed:
                # The endpoint just failed: its other pages wait for the next round, no attempt spent.
                attempts.append(Attempt(message, None, None, None, 0.0, now, True))
                continue
            attempt = _attempt(message, poster, secrets_of, http_allowlist, resolver, stats, now)
            attempts.append(attempt)
            failed = not _is_success(attempt.status_code)
        return attempts

    groups = list(by_client.values())
    if len(groups) == 1 or workers <= 1:
        return [a for group in groups for a in one_endpoint(group)]
    with ThreadPoolExecutor(max_workers=min(workers, len(groups))) as pool:
        return [a for result in pool.map(one_endpoint, groups) for a in result]


def _attempt(
    message: Outgoing,
    poster: WebhookPoster,
    secrets_of: Callable[[str], list[str]],
    http_allowlist: Sequence[str],
    resolver: Resolver,
    stats: SendStats,
    now: dt.datetime,
) -> Attempt:
    started = time.perf_counter()
    try:
        if not message.url:
            raise NightshiftError("client has no webhook URL")
        if not message.secret_ref:
            raise NightshiftError("client has no webhook secret")
        target = resolve_target(message.url, http_allowlist, resolver)
        secrets_ = secrets_of(message.secret_ref)
        signing = time.perf_counter()
        headers = {
            "content-type": "application/json",
            "webhook-id": message.webhook_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": sign(secrets_, message.webhook_id, now, message.body),
        }
        body = message.body.encode()
        posting = time.perf_counter()
        stats.sign_seconds += posting - signing
        result = poster.post(target, headers, body)
        stats.post_seconds += time.perf_counter() - posting
    except NightshiftError as exc:
        result = PostResult(None, str(exc))
    latency = (time.perf_counter() - started) * 1000
    return Attempt(
        message,
        result.status_code,
        result.error,
        result.retry_after_seconds,
        latency,
        now,
    )


def _is_success(status_code: int | None) -> bool:
    return status_code is not None and 200 <= status_code < 300


def record_attempts(session: Session, attempts: Sequence[Attempt], now: dt.datetime, stats: SendStats) -> None:
    """Store every attempt and each message's outcome: delivered, retrying at a stored time, or dead.

    A 410 means the endpoint is gone: it is disabled, and its pages wait (nothing is lost) until ops
    enable it again. Deferred pages go back to due without an attempt counted.
    """
    real = [a for a in attempts if not a.deferred]
    if real:
        session.execute(
            insert(DeliveryAttempt),
            [
                {
                    "message_id": a.message.message_id,
                    "attempted_at": a.attempted_at,
                    "status_code": a.status_code,
                    "latency_ms": a.latency_ms,
                    "error": a.error,
                }
                for a in real
            ],
        )
    rows: list[dict[str, Any]] = []
    # When each endpoint that just failed is worth trying again: its deferred pages wait as long.
    resume_at: dict[int, dt.datetime] = {}
    for a in real:
        count = a.message.attempt_count + 1
        row: dict[str, Any] = {"id": a.message.message_id, "attempt_count": count}
        if _is_success(a.status_code):
            row |= {"status": "delivered", "last_error": None}
        elif a.status_code == 410:
            row |= {"status": "retrying", "last_error": "HTTP 410: endpoint gone, disabled", "next_attempt_at": now}
            if a.message.client_id not in stats.disabled_clients:
                stats.disabled_clients.append(a.message.client_id)
        elif count >= a.message.max_attempts:
            row |= {"status": "dead", "last_error": a.error or f"HTTP {a.status_code}"}
        else:
            delay = next_attempt_delay(count, a.status_code, a.retry_after_seconds, a.message.retry_schedule)
            row |= {
                "status": "retrying",
                "last_error": a.error or f"HTTP {a.status_code}",
                "next_attempt_at": now + dt.timedelta(seconds=delay),
            }
            resume_at[a.message.client_id] = row["next_attempt_at"]
        stats.count(row["status"] if a.status_code != 410 else "disabled")
        rows.append(row)
    for a in attempts:
        if a.deferred:
            rows.append({"id": a.message.message_id, "next_attempt_at": resume_at.get(a.message.client_id, now)})
            stats.count("deferred")
    # Rows differ in which columns they set: one executemany per shape.
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        shapes.setdefault(tuple(sorted(row)), []).append(row)
    for shaped in shapes.values():
        session.execute(update(DeliveryMessage), shaped)
    if stats.disabled_clients:
        session.execute(
            update(Client)
            .where(Client.id.in_(stats.disabled_clients), Client.webhook_disabled_at.is_(None))
            .values(webhook_disabled_at=now, webhook_disabled_reason="HTTP 410 Gone")
        )


def send_due(
    sessions: sessionmaker[Session],
    poster: WebhookPoster,
    secrets_of: Callable[[str], list[str]],
    http_allowlist: Sequence[str],
    stats: SendStats,
    batch_id: int | None = None,
    workers: int = 4,
    claim_pages: int = 32,
    lease_seconds: float = 300.0,
    clock: Callable[[], dt.datetime] = utcnow,
    retry_schedule: Sequence[int] = RETRY_SCHEDULE,
) -> int:
    """Claim, send and record rounds until nothing is due; returns the records delivered.

    Each round is one claim and one bookkeeping transaction; a sender killed mid-round leaves its
    pages leased, and they come due again when the lease ends.
    """
    records = 0
    # One lookup per secret and run, not per page (a Prefect Secret is an API call).
    secrets_of = functools.cache(secrets_of)
    # Endpoints that failed in this run get no more of its attempts: their pages wait their turn.
    failed: set[int] = set()
    while True:
        started = time.perf_counter()
        with transaction(sessions) as session:
            claimed = claim_due(session, clock(), claim_pages, lease_seconds, batch_id, failed, retry_schedule)
        stats.bookkeeping_seconds += time.perf_counter() - started
        if not claimed:
            return records
        attempts = send_claimed(claimed, poster, secrets_of, http_allowlist, stats, workers=workers)
        started = time.perf_counter()
        with transaction(sessions) as session:
            record_attempts(session, attempts, clock(), stats)
        stats.bookkeeping_seconds += time.perf_counter() - started
        failed |= {a.message.client_id for a in attempts if not a.deferred and not _is_success(a.status_code)}
        records += sum(a.message.record_count for a in attempts if _is_success(a.status_code))
