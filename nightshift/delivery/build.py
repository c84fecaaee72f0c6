"""Delivery: a batch's passed items as files in the delivery store and as pages in the webhook outbox.

A delivery is built in two steps around the readiness gate. `build_delivery` streams the records
into a staging folder (JSONL and Parquet, a change list against the previous version) and returns
what the gate needs; `commit_delivery` (delivery.outbox) then publishes the folder and, in one
transaction with the batch's move to 'delivering', writes the outbox pages cut from the JSONL file
under a byte cap.
Nothing is held whole in memory but the ids the gate checks.
"""

from __future__ import annotations

import hashlib
import queue
import secrets
import shutil
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from nightshift.delivery.acceptance import open_rejections
from nightshift.delivery.dataset_card import CardFacts, write_dataset_card
from nightshift.delivery.records import Record, iter_records, outcome_hash, parquet_schema
from nightshift.delivery.training import write_training_files
from nightshift.ingest.batches import file_checksum
from nightshift.platform.errors import NightshiftError
from nightshift.platform.models import AuditLog, Batch, Client, Delivery, Project
from nightshift.projects.registry import project_body

if TYPE_CHECKING:
    import pyarrow as pa


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
    # Records the client rejected whose rework this version carries.
    reworked: int = 0

    @property
    def record_count(self) -> int:
        return len(self.item_ids)

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


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
    rejections = open_rejections(session, batch_id)
    batch_dir = options.directory / client.slug / project.slug / f"batch-{batch_id}"
    built = BuiltDelivery(
        batch_id=batch_id,
        client_id=client.id,
        version=version,
        reason=(
            f"reworked after the client rejected {len(rejections)} record{'s' if len(rejections) != 1 else ''}"
            if rejections
            else _reason(session, batch_id)
            if previous
            else "first delivery"
        ),
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
                        rejection = rejections.get(record.item_id)
                        if rejection is not None:
                            # The client's reason beside what its rework changed (or did not).
                            entry = {"external_id": record.external_id, "change": change, "rejection": rejection}
                            changes.write(orjson.dumps(entry) + b"\n")
                            built.reworked += 1
                        elif change != "unchanged":
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
    try:
        _add_training_files(session, built, batch, project)
    except BaseException:
        built.discard()
        raise
    return built


def _add_training_files(session: Session, built: BuiltDelivery, batch: Batch, project: Project) -> None:
    """The training-ready files (for a project whose items carry model answers) and the dataset card
    that lays every file out for `datasets.load_dataset`."""
    body = project_body(session, project.id)
    training = write_training_files(session, built.batch_id, body, built.staging)
    built.files += list(training.values())
    facts = CardFacts(
        project_slug=project.slug,
        project_name=project.name,
        batch_id=built.batch_id,
        version=built.version,
        spec_version=batch.spec_version,
        records=len(built.item_ids),
        files={"records": {"name": "records.parquet"}, **training},
    )
    card = write_dataset_card(session, facts, body, built.staging)
    built.files.append({**card, "sha256": file_checksum(built.staging / card["name"])})


def _read_ahead(chunks: Iterator[list[Record]]) -> Iterator[list[Record]]:
    """The next chunk is read from the database while this one is written out.

    The reading thread is the only user of the session until the iterator ends; the database wait
    then overlaps the writing instead of adding to it.
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
    """A string column from one joined buffer and its offsets: far faster than pa.array
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
