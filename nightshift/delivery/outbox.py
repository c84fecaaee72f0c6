"""A built delivery published: its manifest, its webhook outbox pages, the batch's moves while it is
sent, and redelivery."""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from nightshift.delivery.acceptance import mark_redelivered
from nightshift.delivery.build import BuiltDelivery, DeliveryOptions, build_delivery
from nightshift.delivery.records import passed_item_ids
from nightshift.platform import access
from nightshift.platform.audit import record_transition
from nightshift.platform.db import transaction
from nightshift.platform.errors import NightshiftError
from nightshift.platform.models import Batch, Client, Delivery, DeliveryMessage, Item, Project

# Room left in a page for the envelope around the records (type, page numbers, the manifest).
ENVELOPE_RESERVE = 16 * 1024


def commit_delivery(
    session: Session, built: BuiltDelivery, options: DeliveryOptions, gate_results: list[dict[str, Any]]
) -> int | None:
    """Publish the files, then the delivery and its outbox pages with the batch's move to 'delivering'.

    Runs inside the caller's transaction. If it rolls back, the published folder is left for the
    next attempt at the same version to replace; the outbox never points at a file that is not there.
    """
    # Locked: two runs delivering the same batch at once (the nightly's and an event's) publish once.
    batch = session.get_one(Batch, built.batch_id, with_for_update=True)
    if batch.status != "passed":
        built.discard()
        return None
    project = session.get_one(Project, batch.project_id)
    client = session.get_one(Client, project.client_id)
    if built.final.exists():
        shutil.rmtree(built.final)
    built.staging.rename(built.final)
    jsonl_path = built.final / "records.jsonl"
    files = [f | {"uri": _link(built.final / f["name"], options)} for f in built.files]
    manifest: dict[str, Any] = {
        "event": "batch.delivered"
        if built.version == 1
        else "batch.reworked"
        if built.reworked
        else "batch.redelivered",
        "client": client.slug,
        "project": project.slug,
        "batch_id": built.batch_id,
        "version": built.version,
        "reason": built.reason,
        "spec_version": batch.spec_version,
        "counts": {"records": built.record_count},
        "files": files,
        "gates": gate_results,
    }
    if built.changes is not None:
        manifest["changes"] = built.changes
    if built.reworked:
        manifest["rejections_reworked"] = built.reworked
    delivery = Delivery(
        batch_id=built.batch_id,
        client_id=client.id,
        version=built.version,
        reason=built.reason,
        record_count=built.record_count,
        file_path=str(jsonl_path),
        file_sha256=built.files[0]["sha256"],
        manifest=manifest,
    )
    session.add(delivery)
    session.flush()
    nonce = secrets.token_hex(4)
    pages = 0
    pending: list[dict[str, Any]] = []
    for records_json, count in _pages(jsonl_path, options):
        pages += 1
        pending.append(
            {
                "delivery_id": delivery.id,
                "page": pages,
                # Unique across environments sending to the same client, and stable across retries.
                "webhook_id": f"msg_b{built.batch_id}v{built.version}p{pages}_{nonce}",
                "records": records_json,
                "record_count": count,
                "status": "pending",
            }
        )
        if len(pending) >= 100:
            session.execute(insert(DeliveryMessage), pending)
            pending = []
    if pending:
        session.execute(insert(DeliveryMessage), pending)
    delivery.page_count = pages
    # A new dict, not an edit in place: the JSON column only sees assignments.
    manifest = manifest | {"counts": {"records": built.record_count, "pages": pages}}
    delivery.manifest = manifest
    _write_manifest(built.final / "manifest.json", manifest)
    record_transition(
        session, "batch", built.batch_id, batch.status, "delivering", "deliver", {"delivery": delivery.id}
    )
    batch.status = "delivering"
    return delivery.id


def _pages(jsonl_path: Path, options: DeliveryOptions) -> Iterator[tuple[str, int]]:
    """Records as JSON arrays no larger than the byte cap (one record alone may exceed it)."""
    budget = max(options.page_bytes - ENVELOPE_RESERVE, 1)
    lines: list[bytes] = []
    size = 0
    with jsonl_path.open("rb") as handle:
        for line in handle:
            if lines and (size + len(line) > budget or len(lines) >= options.page_records):
                yield _page(lines), len(lines)
                lines, size = [], 0
            lines.append(line)
            size += len(line)
    if lines or not size:
        yield _page(lines), len(lines)


def _page(lines: list[bytes]) -> str:
    # Each line ends in a newline, which JSON takes as whitespace: join as they are, decode once.
    return (b"[" + b",".join(lines) + b"]").decode()


def _link(path: Path, options: DeliveryOptions) -> str:
    if options.link_base:
        relative = path.relative_to(options.directory).as_posix()
        return f"{options.link_base.rstrip('/')}/{relative}"
    return path.as_uri()


def _write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    temporary.replace(path)


# Given the built files and the ids that should be in them: (success, gate outcome to record).
ReadinessGate = Callable[["BuiltDelivery", list[int]], Any]


def prepare_delivery(
    sessions: sessionmaker[Session],
    batch_id: int,
    options: DeliveryOptions,
    gate: ReadinessGate,
    record_gate: Callable[[Session, int, Any], int],
) -> tuple[int | None, Any]:
    """Build, gate, publish: (delivery id or None, the gate's outcome or None when not passed)."""
    with sessions() as session:
        built = build_delivery(session, batch_id, options)
        if built is None:
            return None, None
        expected = passed_item_ids(session, batch_id)
    try:
        outcome = gate(built, expected)
        with transaction(sessions) as session:
            gate_run = record_gate(session, batch_id, outcome)
            if not outcome.success:
                return None, outcome
            summary = [{"gate": outcome.gate, "run": gate_run, "success": True}]
            return commit_delivery(session, built, options, summary), outcome
    finally:
        built.discard()


def request_redelivery(session: Session, batch_id: int, reason: str, actor: str) -> None:
    """Send a delivered (or dead-lettered) batch again, as a new version the next delivery run builds."""
    # Locked: a purge or a client's rejection moving the batch meanwhile is seen, not overwritten.
    batch = session.get_one(Batch, batch_id, with_for_update=True, populate_existing=True)
    if batch.purged_at is not None:
        raise NightshiftError(
            f"batch {batch_id}'s content was purged on {batch.purged_at:%Y-%m-%d} under its client's retention"
        )
    if batch.status not in ("delivered", "failed"):
        raise NightshiftError(f"batch {batch_id} is {batch.status}: only a delivered or failed batch is redelivered")
    if not session.scalar(select(func.count()).select_from(Delivery).where(Delivery.batch_id == batch_id)):
        raise NightshiftError(f"batch {batch_id} was never delivered")
    record_transition(session, "batch", batch_id, batch.status, "passed", actor, {"reason": reason})
    batch.status = "passed"


def settle_deliveries(session: Session, batch_id: int | None = None) -> list[tuple[int, str]]:
    """Deliveries whose every page has landed (or died) are closed, with their batch and items.

    Rows another run is settling are skipped (SKIP LOCKED), so each is settled, and announced, once.
    """
    query = select(Delivery).where(Delivery.status == "pending").with_for_update(skip_locked=True)
    if batch_id is not None:
        query = query.where(Delivery.batch_id == batch_id)
    settled: list[tuple[int, str]] = []
    for delivery in session.scalars(query):
        statuses = set(
            session.scalars(select(DeliveryMessage.status).where(DeliveryMessage.delivery_id == delivery.id).distinct())
        )
        batch = session.get_one(Batch, delivery.batch_id)
        if statuses == {"delivered"}:
            delivery.status = "delivered"
            if delivery.manifest.get("rejections_reworked"):
                # Answered once the client has it: a version that dead-letters leaves them open,
                # so the next one carries the client's reasons again.
                mark_redelivered(session, delivery.batch_id, delivery.version)
            # The client has the records' content now: one access row per version, for its batch.
            access.record(
                session,
                "client",
                session.get_one(Client, delivery.client_id).slug,
                "delivery",
                "webhook",
                batch_id=delivery.batch_id,
                detail={"version": delivery.version, "records": delivery.record_count},
            )
            session.execute(
                update(Item)
                .where(Item.batch_id == delivery.batch_id, Item.status == "passed", Item.is_gold.is_(False))
                .values(status="delivered")
            )
            target, detail = "delivered", None
        elif "dead" in statuses and not statuses & {"pending", "retrying"}:
            delivery.status = "dead"
            target, detail = "failed", {"reason": "webhook dead-lettered"}
        else:
            continue
        # A batch sent again meanwhile (redelivery) stays where it is: this settles the old version.
        if batch.status == "delivering" and _latest_version(session, batch.id) == delivery.version:
            record_transition(session, "batch", batch.id, batch.status, target, "deliver", detail)
            batch.status = target
        settled.append((delivery.id, delivery.status))
    return settled


def _latest_version(session: Session, batch_id: int) -> int:
    return int(session.scalar(select(func.max(Delivery.version)).where(Delivery.batch_id == batch_id)) or 0)
