"""Delivery: passed items to the client as a JSONL file and as signed webhook pages from an outbox."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import random
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from nightshift.audit import record_transition
from nightshift.errors import NightshiftError
from nightshift.models import (
    Assignment,
    Batch,
    Client,
    Delivery,
    DeliveryAttempt,
    DeliveryMessage,
    GateRun,
    Item,
    ItemResult,
    Project,
)

# Seconds to wait after attempt n (1-based); the last entry repeats until attempts run out.
RETRY_SCHEDULE = (5, 300, 1_800, 7_200, 18_000, 36_000, 36_000)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secrets_: Sequence[str], webhook_id: str, timestamp: dt.datetime, body: str) -> str:
    """Standard Webhooks signature header; several secrets (a rotation) give several signatures."""
    return " ".join(Webhook(secret).sign(webhook_id, timestamp, body) for secret in secrets_)


def pseudonym(client_id: int, expert_id: int) -> str:
    """A stable per-client alias: clients can tell experts apart but never who they are."""
    return "exp_" + hashlib.sha256(f"nightshift:{client_id}:{expert_id}".encode()).hexdigest()[:12]


def check_webhook_url(url: str, http_allowlist: Sequence[str]) -> None:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https":
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return
        if not address.is_global and host not in http_allowlist:
            raise NightshiftError(f"webhook host {host} is not a public address")
        return
    if parts.scheme == "http" and host in http_allowlist:
        return
    raise NightshiftError(f"webhook URL must be https (http only for allowlisted hosts): {url}")


@dataclass(frozen=True)
class PostResult:
    status_code: int | None
    error: str | None = None
    retry_after_seconds: float | None = None


class WebhookPoster(Protocol):
    def post(self, url: str, headers: dict[str, str], body: str) -> PostResult: ...


def build_records(session: Session, batch_id: int) -> tuple[list[dict[str, Any]], list[int]]:
    """The records of a batch's passed items, and the ids of every passed item (for the gate)."""
    batch = session.get_one(Batch, batch_id)
    project = session.get_one(Project, batch.project_id)
    gate_runs = list(session.scalars(select(GateRun.id).where(GateRun.batch_id == batch_id).order_by(GateRun.id)))
    rows = session.execute(
        select(
            Item.id,
            Item.external_id,
            Item.content_hash,
            ItemResult.answer,
            ItemResult.method,
            ItemResult.agreement,
            ItemResult.submission_ids,
        )
        .join(ItemResult, ItemResult.item_id == Item.id)
        .where(Item.batch_id == batch_id, Item.status == "passed", Item.is_gold.is_(False))
        .order_by(Item.id)
    ).all()
    passed_ids = [r[0] for r in rows]
    experts: dict[int, list[int]] = {}
    for item_id, expert_id in session.execute(
        select(Assignment.item_id, Assignment.expert_id)
        .where(Assignment.item_id.in_(passed_ids), Assignment.status == "accepted")
        .order_by(Assignment.id)
    ):
        experts.setdefault(item_id, []).append(expert_id)
    records = [
        {
            "item_id": item_id,
            "external_id": external_id,
            "input_hash": content_hash,
            "answer": answer,
            "method": method,
            "agreement": agreement,
            "lineage": {
                "experts": [pseudonym(project.client_id, e) for e in experts.get(item_id, [])],
                "submissions": submission_ids,
                "gate_runs": gate_runs,
                "spec_version": batch.spec_version,
            },
        }
        for item_id, external_id, content_hash, answer, method, agreement, submission_ids in rows
    ]
    return records, passed_ids


def write_delivery(
    session: Session,
    batch_id: int,
    records: list[dict[str, Any]],
    delivery_dir: Path,
    page_records: int,
    gate_results: list[dict[str, Any]],
) -> int | None:
    """Write the file and the outbox in one transaction with the batch's move to 'delivering'."""
    batch = session.get_one(Batch, batch_id)
    if batch.status != "passed":
        return None
    project = session.get_one(Project, batch.project_id)
    client = session.get_one(Client, project.client_id)
    version = (session.scalar(select(func.max(Delivery.version)).where(Delivery.batch_id == batch_id)) or 0) + 1
    folder = delivery_dir / client.slug / project.slug / f"batch-{batch_id}" / f"v{version}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "records.jsonl"
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        for record in records:
            line = (json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n").encode()
            digest.update(line)
            handle.write(line)
    manifest = {
        "client": client.slug,
        "project": project.slug,
        "batch_id": batch_id,
        "version": version,
        "spec_version": batch.spec_version,
        "record_count": len(records),
        "files": [{"name": "records.jsonl", "sha256": digest.hexdigest(), "uri": path.as_uri()}],
        "gates": gate_results,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    delivery = Delivery(
        batch_id=batch_id,
        client_id=client.id,
        version=version,
        record_count=len(records),
        file_path=str(path),
        file_sha256=digest.hexdigest(),
        manifest=manifest,
    )
    session.add(delivery)
    session.flush()
    pages = [records[i : i + page_records] for i in range(0, len(records), page_records)] or [[]]
    for number, page in enumerate(pages, start=1):
        body = {
            "type": "batch.delivered",
            "manifest": manifest,
            "page": number,
            "pages": len(pages),
            "records": page,
        }
        session.add(
            DeliveryMessage(
                delivery_id=delivery.id,
                page=number,
                webhook_id=f"msg_{client.slug}_{batch_id}_v{version}_p{number}",
                body=json.dumps(body, sort_keys=True, ensure_ascii=False),
                status="pending",
            )
        )
    record_transition(session, "batch", batch_id, batch.status, "delivering", "deliver", {"delivery": delivery.id})
    batch.status = "delivering"
    return delivery.id


def due_messages(session: Session, now: dt.datetime, batch_id: int | None = None) -> list[int]:
    query = (
        select(DeliveryMessage.id)
        .join(Delivery, Delivery.id == DeliveryMessage.delivery_id)
        .where(DeliveryMessage.status.in_(("pending", "retrying")), DeliveryMessage.next_attempt_at <= now)
        .order_by(DeliveryMessage.id)
    )
    if batch_id is not None:
        query = query.where(Delivery.batch_id == batch_id)
    return list(session.scalars(query))


def send_message(
    session: Session,
    message_id: int,
    poster: WebhookPoster,
    secrets_: Sequence[str],
    now: dt.datetime,
    http_allowlist: Sequence[str],
) -> str:
    """One attempt at one outbox message; the outcome and the next attempt time are stored."""
    message = session.get_one(DeliveryMessage, message_id)
    if message.status in ("delivered", "dead"):
        return message.status
    delivery = session.get_one(Delivery, message.delivery_id)
    client = session.get_one(Client, delivery.client_id)
    started = time.perf_counter()
    if not client.webhook_url:
        result = PostResult(None, "client has no webhook URL")
    else:
        try:
            check_webhook_url(client.webhook_url, http_allowlist)
        except NightshiftError as exc:
            result = PostResult(None, str(exc))
        else:
            timestamp = dt.datetime.now(dt.UTC)
            headers = {
                "content-type": "application/json",
                "webhook-id": message.webhook_id,
                "webhook-timestamp": str(int(timestamp.timestamp())),
                "webhook-signature": sign(secrets_, message.webhook_id, timestamp, message.body),
            }
            result = poster.post(client.webhook_url, headers, message.body)
    latency = (time.perf_counter() - started) * 1000
    session.add(
        DeliveryAttempt(
            message_id=message.id,
            attempted_at=now,
            status_code=result.status_code,
            latency_ms=latency,
            error=result.error,
        )
    )
    message.attempt_count += 1
    if result.status_code is not None and 200 <= result.status_code < 300:
        message.status, message.last_error = "delivered", None
    elif message.attempt_count >= MAX_ATTEMPTS or result.status_code == 410:
        message.status = "dead"
        message.last_error = result.error or f"HTTP {result.status_code}"
    else:
        delay: float = RETRY_SCHEDULE[min(message.attempt_count, len(RETRY_SCHEDULE)) - 1]
        if result.retry_after_seconds is not None:
            delay = max(delay, result.retry_after_seconds)
        message.status = "retrying"
        message.last_error = result.error or f"HTTP {result.status_code}"
        message.next_attempt_at = now + dt.timedelta(seconds=delay * random.uniform(1.0, 1.2))
    return message.status


def settle_deliveries(session: Session, batch_id: int | None = None) -> list[tuple[int, str]]:
    """Deliveries whose every message has landed (or died) are closed, with their batch and items."""
    query = select(Delivery).where(Delivery.status == "pending")
    if batch_id is not None:
        query = query.where(Delivery.batch_id == batch_id)
    settled: list[tuple[int, str]] = []
    for delivery in session.scalars(query):
        statuses = set(
            session.scalars(select(DeliveryMessage.status).where(DeliveryMessage.delivery_id == delivery.id).distinct())
        )
        if statuses == {"delivered"}:
            delivery.status = "delivered"
            session.execute(
                update(Item)
                .where(Item.batch_id == delivery.batch_id, Item.status == "passed", Item.is_gold.is_(False))
                .values(status="delivered")
            )
            batch = session.get_one(Batch, delivery.batch_id)
            record_transition(session, "batch", batch.id, batch.status, "delivered", "deliver")
            batch.status = "delivered"
        elif "dead" in statuses and not statuses & {"pending", "retrying"}:
            delivery.status = "dead"
            batch = session.get_one(Batch, delivery.batch_id)
            record_transition(
                session,
                "batch",
                batch.id,
                batch.status,
                "failed",
                "deliver",
                {"reason": "webhook dead-lettered"},
            )
            batch.status = "failed"
        else:
            continue
        settled.append((delivery.id, delivery.status))
    return settled
