"""Delivery: a batch's passed items as files in the delivery store and as pages in the webhook outbox.

A delivery is built in two steps around the readiness gate. `build_delivery` streams the records
into a staging folder (JSONL and Parquet, a change list against the previous version) and returns
what the gate needs; `commit_delivery` then publishes the folder and, in one transaction with the
batch's move to 'delivering', writes the outbox pages cut from the JSONL file under a byte cap.
Nothing is held whole in memory but the ids the gate checks.
"""

from __future__ import annotations

import hashlib
import json
import queue
import secrets
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import ColumnElement, Text, cast, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from nightshift.ingest.load import file_checksum
from nightshift.platform import pseudonyms
from nightshift.platform.audit import record_transition
from nightshift.platform.db import transaction
from nightshift.platform.errors import NightshiftError
from nightshift.platform.models import (
    Assignment,
    AuditLog,
    Batch,
    Client,
    Delivery,
    DeliveryMessage,
    GateRun,
    Item,
    ItemResult,
    Project,
)

if TYPE_CHECKING:
    import pyarrow as pa

# Items a delivery carries: passed, or delivered before (a redelivery); never gold.
DELIVERABLE = ("passed", "delivered")
RECORD_FIELDS = ["item_id", "external_id", "input_hash", "answer", "method", "agreement", "lineage"]
# Room left in a page for the envelope around the records (type, page numbers, the manifest).
ENVELOPE_RESERVE = 16 * 1024


# pyarrow and numpy (~70 MB) are imported by the build that writes Parquet, not by every process
# that imports this module (ingest has no use for them).
@cache
def parquet_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("item_id", pa.int64()),
            ("external_id", pa.string()),
            ("input_hash", pa.string()),
            # Answers and lineage differ per project: kept as JSON text, which every engine can read.
            ("answer", pa.string()),
            ("method", pa.string()),
            ("agreement", pa.float64()),
            ("lineage", pa.string()),
            ("change", pa.string()),
        ]
    )


def pseudonym(client_id: int, expert_id: int) -> str:
    """A stable per-client alias: clients can tell experts apart but never who they are (keyed)."""
    return pseudonyms.for_client(client_id, expert_id)


@dataclass(frozen=True)
class DeliveryOptions:
    directory: Path
    page_bytes: int = 256 * 1024
    page_records: int = 1000
    # Public base URL of the delivery store (e.g. a bucket); file:// links when unset.
    link_base: str | None = None
    chunk_rows: int = 10_000


@dataclass
class BuiltDelivery:
    """Files in a staging folder, and what the readiness gate checks."""

    batch_id: int
    client_id: int
    version: int
    reason: str
    staging: Path
    final: Path
    item_ids: list[int] = field(default_factory=list)
    missing_answer_ids: list[int] = field(default_factory=list)
    columns: set[str] = field(default_factory=set)
    files: list[dict[str, Any]] = field(default_factory=list)
    changes: dict[str, Any] | None = None

    @property
    def record_count(self) -> int:
        return len(self.item_ids)

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def _deliverable(batch_id: int) -> tuple[ColumnElement[bool], ...]:
    return Item.batch_id == batch_id, Item.status.in_(DELIVERABLE), Item.is_gold.is_(False)


def passed_item_ids(session: Session, batch_id: int) -> list[int]:
    return list(session.scalars(select(Item.id).where(*_deliverable(batch_id)).order_by(Item.id)))


@dataclass(frozen=True)
class Record:
    """One delivered record, with the stored JSON of its answer kept as text: it is written out as
    it was stored, never parsed and dumped again (at 100,000 records that is most of the cost)."""

    item_id: int
    external_id: str
    input_hash: str
    answer_json: str | None
    method_json: str
    agreement: float
    lineage_json: str

    def as_dict(self, change: str | None = None) -> dict[str, Any]:
        record: dict[str, Any] = {
            "item_id": self.item_id,
            "external_id": self.external_id,
            "input_hash": self.input_hash,
            "answer": orjson.Fragment(self.answer_json or "null"),
            "method": orjson.Fragment(self.method_json),
            "agreement": self.agreement,
            "lineage": orjson.Fragment(self.lineage_json),
        }
        if change is not None:
            record["change"] = change
        return record

    @property
    def has_answer(self) -> bool:
        return self.answer_json not in (None, "null")

    def outcome_hash(self) -> str:
        return outcome_hash(orjson.loads(self.answer_json or "null"), orjson.loads(self.method_json), self.agreement)


def _lineage_context(session: Session, batch_id: int) -> tuple[Batch, int, list[int]]:
    """What every record's lineage shares: the batch, its client (for pseudonyms), its gate runs."""
    batch = session.get_one(Batch, batch_id)
    client_id = session.get_one(Project, batch.project_id).client_id
    gate_runs = list(session.scalars(select(GateRun.id).where(GateRun.batch_id == batch_id).order_by(GateRun.id)))
    return batch, client_id, gate_runs


def iter_records(session: Session, batch_id: int, chunk_rows: int = 5000) -> Iterator[list[Record]]:
    """The batch's deliverable records in item order, a chunk at a time."""
    if session.get_bind().dialect.name == "postgresql":
        return iter_records_in_sql(session, batch_id, chunk_rows)
    return iter_records_in_python(session, batch_id, chunk_rows)


# Lineage put together by PostgreSQL, on the other core, while this process writes the previous
# chunk: building it here from three assignment rows per item was most of a delivery's build time.
# The text is the same, byte for byte, as iter_records_in_python's (a test holds them equal): every
# piece is either JSON already (jsonb as text), hex, a number, or a role or status the table's
# check constraints limit to plain words, so concatenation needs no escaping. Pseudonyms come from
# pseudonym() here, passed in as arrays: one definition of an alias, computed once per expert.
LINEAGE_SQL = """
WITH chunk AS MATERIALIZED (
    SELECT i.id, i.external_id, i.content_hash FROM items i
    WHERE i.batch_id = %(batch_id)s AND i.status = ANY(%(statuses)s) AND NOT i.is_gold AND i.id > %(after)s
    ORDER BY i.id
    LIMIT %(limit)s
), alias AS (
    SELECT * FROM unnest(%(expert_ids)s::bigint[], %(aliases)s::text[]) AS a (expert_id, alias)
), lineage AS (
    SELECT s.item_id,
           string_agg('{"expert":"' || a.alias || '","role":"' || s.role || '","decision":"' || s.status || '"}',
                      ',' ORDER BY s.id) AS decisions,
           string_agg('"' || a.alias || '"', ',' ORDER BY s.id)
               FILTER (WHERE s.role = 'annotate' AND s.status = 'accepted') AS experts
    FROM assignments s JOIN alias a ON a.expert_id = s.expert_id
    WHERE s.item_id BETWEEN (SELECT min(id) FROM chunk) AND (SELECT max(id) FROM chunk)
      AND s.status IN ('accepted', 'rejected')
    GROUP BY s.item_id
)
SELECT c.id, c.external_id, c.content_hash, r.answer::text, r.method::text, r.agreement,
       '{"input_hash":"' || c.content_hash || '","experts":[' || coalesce(l.experts, '') || '],"decisions":['
       || coalesce(l.decisions, '') || '],"submissions":' || coalesce(r.submission_ids::text, '[]')
       || ',"gate_runs":' || %(gate_runs)s || ',"spec_version":' || %(spec_version)s::integer || '}'
FROM chunk c
JOIN item_results r ON r.item_id = c.id
LEFT JOIN lineage l ON l.item_id = c.id
ORDER BY c.id
"""


def iter_records_in_sql(session: Session, batch_id: int, chunk_rows: int = 5000) -> Iterator[list[Record]]:
    """PostgreSQL: records with their lineage made by the server, read through the driver's cursor."""
    batch, client_id, gate_runs = _lineage_context(session, batch_id)
    expert_ids = list(
        session.scalars(
            select(Assignment.expert_id)
            .distinct()
            .join(Item, Item.id == Assignment.item_id)
            .where(Item.batch_id == batch_id, Assignment.status.in_(("accepted", "rejected")))
        )
    )
    params: dict[str, Any] = {
        "batch_id": batch_id,
        "statuses": list(DELIVERABLE),
        "expert_ids": expert_ids,
        "aliases": [pseudonym(client_id, expert_id) for expert_id in expert_ids],
        "gate_runs": orjson.dumps(gate_runs).decode(),
        "spec_version": batch.spec_version,
        "limit": chunk_rows,
        "after": 0,
    }
    connection = session.connection()
    # JIT compiling costs more than it saves on a chunk this size (10-20 ms a query here).
    connection.exec_driver_sql("SET LOCAL jit = off")
    # The driver's cursor: SQLAlchemy's row processing would cost as much as the query.
    cursor = connection.connection.cursor()
    try:
        while True:
            cursor.execute(LINEAGE_SQL, params)
            rows = cursor.fetchall()
            if not rows:
                return
            params["after"] = rows[-1][0]
            yield [Record(*row) for row in rows]
    finally:
        cursor.close()


def iter_records_in_python(session: Session, batch_id: int, chunk_rows: int = 5000) -> Iterator[list[Record]]:
    """Any database: items and results in one query, lineage put together here from the assignments."""
    batch, client_id, gate_runs = _lineage_context(session, batch_id)
    shared: dict[tuple[int, str, str], dict[str, str]] = {}
    last = 0
    # Core rows straight off the connection: ORM row loading costs more than the query itself here.
    connection = session.connection()
    while True:
        rows = (
            connection.execute(
                select(
                    Item.id,
                    Item.external_id,
                    Item.content_hash,
                    cast(ItemResult.answer, Text),
                    cast(ItemResult.method, Text),
                    ItemResult.agreement,
                    cast(ItemResult.submission_ids, Text),
                )
                .join(ItemResult, ItemResult.item_id == Item.id)
                .where(*_deliverable(batch_id), Item.id > last)
                .order_by(Item.id)
                .limit(chunk_rows)
            )
            .tuples()
            .all()
        )
        if not rows:
            return
        first, last = rows[0][0], rows[-1][0]
        decisions: dict[int, list[dict[str, str]]] = {}
        annotators: dict[int, list[str]] = {}
        for item_id, expert_id, role, status in connection.execute(
            select(Assignment.item_id, Assignment.expert_id, Assignment.role, Assignment.status)
            .join(Item, Item.id == Assignment.item_id)
            .where(
                Item.batch_id == batch_id,
                Assignment.item_id.between(first, last),
                Assignment.status.in_(("accepted", "rejected")),
            )
            .order_by(Assignment.id)
        ).all():
            # One dict per (expert, role, decision), shared by every record it appears in.
            decision = shared.get((expert_id, role, status))
            if decision is None:
                alias = pseudonym(client_id, expert_id)
                decision = shared[(expert_id, role, status)] = {"expert": alias, "role": role, "decision": status}
            decisions.setdefault(item_id, []).append(decision)
            if role == "annotate" and status == "accepted":
                annotators.setdefault(item_id, []).append(decision["expert"])
        yield [
            Record(
                item_id,
                external_id,
                content_hash,
                answer,
                method,
                agreement,
                orjson.dumps(
                    {
                        "input_hash": content_hash,
                        "experts": annotators.get(item_id, []),
                        "decisions": decisions.get(item_id, []),
                        "submissions": orjson.Fragment(submissions or "[]"),
                        "gate_runs": gate_runs,
                        "spec_version": batch.spec_version,
                    }
                ).decode(),
            )
            for item_id, external_id, content_hash, answer, method, agreement, submissions in rows
        ]


def outcome_hash(answer: Any, method: Any, agreement: float) -> str:
    """What a client cares about changing: the answer, how it was reached, and the agreement."""
    return hashlib.sha1(orjson.dumps([answer, method, agreement], option=orjson.OPT_SORT_KEYS)).hexdigest()


def _previous_outcomes(session: Session, batch_id: int) -> tuple[int, dict[str, str]] | None:
    """The latest earlier version's outcome per external_id, read back from its checked file."""
    previous = session.scalars(
        select(Delivery).where(Delivery.batch_id == batch_id).order_by(Delivery.version.desc()).limit(1)
    ).first()
    if previous is None:
        return None
    path = Path(previous.file_path)
    digest = hashlib.sha256()
    outcomes: dict[str, str] = {}
    try:
        with path.open("rb") as handle:
            for line in handle:
                digest.update(line)
                record = orjson.loads(line)
                outcomes[record["external_id"]] = outcome_hash(record["answer"], record["method"], record["agreement"])
    except OSError as exc:
        raise NightshiftError(f"version {previous.version} of batch {batch_id} is missing its file {path}") from exc
    if digest.hexdigest() != previous.file_sha256:
        raise NightshiftError(f"version {previous.version} of batch {batch_id}: file {path} fails its checksum")
    return previous.version, outcomes


def build_delivery(session: Session, batch_id: int, options: DeliveryOptions) -> BuiltDelivery | None:
    """Stream the records into a staging folder; None when the batch is not passed."""
    batch = session.get_one(Batch, batch_id)
    if batch.status != "passed":
        return None
    project = session.get_one(Project, batch.project_id)
    client = session.get_one(Client, project.client_id)
    previous = _previous_outcomes(session, batch_id)
    version = (previous[0] if previous else 0) + 1
    batch_dir = options.directory / client.slug / project.slug / f"batch-{batch_id}"
    built = BuiltDelivery(
        batch_id=batch_id,
        client_id=client.id,
        version=version,
        reason=_reason(session, batch_id) if previous else "first delivery",
        staging=batch_dir / f".v{version}-{secrets.token_hex(4)}",
        final=batch_dir / f"v{version}",
    )
    built.staging.mkdir(parents=True)
    earlier = previous[1] if previous else None
    counts = {"added": 0, "changed": 0, "unchanged": 0}
    jsonl_digest = hashlib.sha256()
    jsonl_path, parquet_path = built.staging / "records.jsonl", built.staging / "records.parquet"
    changes_path = built.staging / "changes.jsonl"
    import pyarrow.parquet as pq

    try:
        with (
            jsonl_path.open("wb") as jsonl,
            pq.ParquetWriter(parquet_path, parquet_schema(), compression="zstd") as parquet,
            changes_path.open("wb") as changes,
        ):
            for chunk in _read_ahead(iter_records(session, batch_id, options.chunk_rows)):
                changes_of: list[str | None] = []
                for record in chunk:
                    change = None
                    if earlier is not None:
                        was = earlier.pop(record.external_id, None)
                        change = "added" if was is None else "unchanged" if was == record.outcome_hash() else "changed"
                        counts[change] += 1
                        if change != "unchanged":
                            changes.write(orjson.dumps({"external_id": record.external_id, "change": change}))
                            changes.write(b"\n")
                    changes_of.append(change)
                    fields = record.as_dict(change)
                    # What the readiness gate checks against the schema: the fields as written.
                    built.columns.update(fields)
                    line = orjson.dumps(fields, option=orjson.OPT_APPEND_NEWLINE)
                    jsonl_digest.update(line)
                    jsonl.write(line)
                    built.item_ids.append(record.item_id)
                    if not record.has_answer:
                        built.missing_answer_ids.append(record.item_id)
                parquet.write_table(_parquet_chunk(chunk, changes_of))
            for external_id in sorted(earlier or {}):
                changes.write(orjson.dumps({"external_id": external_id, "change": "removed"}) + b"\n")
    except BaseException:
        built.discard()
        raise
    built.files = [
        {"name": "records.jsonl", "sha256": jsonl_digest.hexdigest(), "format": "jsonl"},
        {"name": "records.parquet", "sha256": file_checksum(parquet_path), "format": "parquet"},
    ]
    if earlier is not None:
        built.files.append({"name": "changes.jsonl", "sha256": file_checksum(changes_path), "format": "jsonl"})
        built.changes = {"previous_version": version - 1, **counts, "removed": len(earlier)}
    else:
        changes_path.unlink()
    return built


def _read_ahead(chunks: Iterator[list[Record]]) -> Iterator[list[Record]]:
    """The next chunk is read from the database while this one is written out.

    The reading thread is the only user of the session until the iterator ends; the database wait
    (a third of a build) then overlaps the writing instead of adding to it.
    """
    ahead: queue.Queue[list[Record] | BaseException | None] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def read() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        ahead.put(chunk, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ahead.put(None)
        except BaseException as exc:  # handed to the writer, raised there
            ahead.put(exc)

    reader = threading.Thread(target=read, name="delivery-read-ahead", daemon=True)
    reader.start()
    try:
        while (item := ahead.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join()


def _parquet_chunk(chunk: list[Record], changes: list[str | None]) -> pa.Table:
    import pyarrow as pa

    return pa.table(
        {
            "item_id": [r.item_id for r in chunk],
            "external_id": _strings([r.external_id for r in chunk]),
            "input_hash": _strings([r.input_hash for r in chunk]),
            "answer": _strings([r.answer_json for r in chunk]),
            "method": _strings([r.method_json for r in chunk]),
            "agreement": [r.agreement for r in chunk],
            "lineage": _strings([r.lineage_json for r in chunk]),
            "change": _strings(changes),
        },
        schema=parquet_schema(),
    )


def _strings(values: Sequence[str | bytes | None]) -> pa.Array:
    """A string column from one joined buffer and its offsets: ~25x faster here than pa.array
    converting one Python object at a time, which was most of a delivery's build time."""
    import numpy as np
    import pyarrow as pa

    if any(v is None for v in values):
        return pa.array([v.decode() if isinstance(v, bytes) else v for v in values], type=pa.string())
    encoded = [v if isinstance(v, bytes) else str(v).encode() for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), out=offsets[1:])
    return pa.LargeStringArray.from_buffers(len(encoded), pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))).cast(
        pa.string()
    )


def _reason(session: Session, batch_id: int) -> str:
    """Why the batch is being delivered again: the detail of its latest move back to 'passed'."""
    detail = session.scalars(
        select(AuditLog.detail)
        .where(AuditLog.entity == "batch", AuditLog.entity_id == batch_id, AuditLog.to_status == "passed")
        .order_by(AuditLog.id.desc())
        .limit(1)
    ).first()
    return str((detail or {}).get("reason") or "redelivery")


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
        "event": "batch.delivered" if built.version == 1 else "batch.redelivered",
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
    batch = session.get_one(Batch, batch_id)
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
