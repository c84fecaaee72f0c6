"""Ingest: client files of work items into a batch, row by row validated, bad rows quarantined."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightshift.audit import record_transition
from nightshift.errors import SourceError
from nightshift.models import Batch, GoldAnswer, Item, QuarantinedRow
from nightshift.projects import get_project, project_spec
from nightshift.spec import ProjectBody
from nightshift.sql import insert_ignoring_conflicts, insert_returning_new

# Larger chunks amortise round trips; smaller ones keep a Prefect task's inputs small.
DEFAULT_CHUNK_ROWS = 2_000
MAX_RAW_IN_QUARANTINE = 10_000


@dataclass
class IngestCounts:
    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    quarantined: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, other: IngestCounts) -> None:
        self.read += other.read
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.conflicts += other.conflicts
        self.quarantined += other.quarantined
        self.reasons.update(other.reasons)

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "quarantined": self.quarantined,
            "quarantined_by_reason": dict(self.reasons),
        }


@dataclass(frozen=True)
class RawRow:
    line_number: int
    text: str


def file_checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_source(path: Path) -> Path:
    if not path.exists():
        raise SourceError(f"file not found: {path}")
    if not path.is_file():
        raise SourceError(f"not a file: {path}")
    return path


def open_batch(session: Session, project_slug: str, path: Path) -> tuple[int, bool]:
    """The batch for this file: the existing one if the same bytes were ingested before."""
    project = get_project(session, project_slug)
    checksum = file_checksum(check_source(path))
    values = {
        "project_id": project.id,
        "source": str(path),
        "source_checksum": checksum,
        "status": "ingested",
        "spec_version": project.spec_version,
    }
    created = insert_ignoring_conflicts(session, Batch, [values], ["project_id", "source_checksum"])
    batch_id = session.scalars(
        select(Batch.id).where(Batch.project_id == project.id, Batch.source_checksum == checksum)
    ).one()
    if created:
        record_transition(session, "batch", batch_id, None, "ingested", "ingest", {"source": str(path)})
    return batch_id, bool(created)


def read_jsonl_chunks(path: Path, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[list[RawRow]]:
    """Stream a JSONL file in chunks of raw lines; memory is bounded by one chunk."""
    chunk: list[RawRow] = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if not text.strip():
                continue
            chunk.append(RawRow(number, text))
            if len(chunk) >= chunk_rows:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def content_hash(fields: dict[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def validate_row(text: str, project: ProjectBody) -> tuple[dict[str, Any] | None, str | None]:
    """The row's item values, or the reason it is refused."""
    if "\ufffd" in text:
        return None, "not valid UTF-8"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON: {exc.msg} at column {exc.colno}"
    if not isinstance(data, dict):
        return None, f"expected a JSON object, got {type(data).__name__}"
    external_id = data.get("external_id")
    if external_id is None or (isinstance(external_id, str) and not external_id.strip()):
        return None, "missing external_id"
    if not isinstance(external_id, str | int) or isinstance(external_id, bool):
        return None, "external_id must be a string or an integer"
    external_id = str(external_id)
    if len(external_id) > 200:
        return None, "external_id longer than 200 characters"
    fields: dict[str, Any] = {}
    for spec_field in project.input_fields:
        value = data.get(spec_field.name)
        if value is None:
            if spec_field.required:
                return None, f"missing required field {spec_field.name}"
            continue
        kind = spec_field.type
        if kind == "text":
            if not isinstance(value, str):
                return None, f"field {spec_field.name} must be text"
            if not spec_field.min_length <= len(value) <= spec_field.max_length:
                return None, (
                    f"field {spec_field.name} has {len(value)} characters, "
                    f"allowed {spec_field.min_length}..{spec_field.max_length}"
                )
        elif kind == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
            return None, f"field {spec_field.name} must be an integer"
        elif kind == "number" and (not isinstance(value, int | float) or isinstance(value, bool)):
            return None, f"field {spec_field.name} must be a number"
        elif kind == "boolean" and not isinstance(value, bool):
            return None, f"field {spec_field.name} must be true or false"
        fields[spec_field.name] = value
    language = str(fields.get("language") or data.get("language") or project.languages[0])
    if language not in project.languages:
        return None, f"language {language!r} is not one of the project's {project.languages}"
    gold = data.get("gold_answer")
    if gold is not None and not isinstance(gold, dict):
        return None, "gold_answer must be an object"
    return {
        "external_id": external_id,
        "fields": fields,
        "language": language,
        "gold_answer": gold,
    }, None


def load_chunk(session: Session, batch_id: int, source: str, rows: list[RawRow]) -> IngestCounts:
    """Validate and insert one chunk. Safe to repeat: keys make a second pass a no-op."""
    batch = session.get_one(Batch, batch_id)
    project = project_spec(session, batch.project_id).project
    counts = IngestCounts(read=len(rows))
    candidates: dict[str, dict[str, Any]] = {}
    quarantine: list[dict[str, Any]] = []

    def refuse(row: RawRow, reason: str, external_id: str | None = None, conflict: bool = False) -> None:
        if not conflict:
            counts.quarantined += 1
            counts.reasons[reason.split(":")[0]] += 1
        quarantine.append(
            {
                "batch_id": batch_id,
                "source": source,
                "line_number": row.line_number,
                "external_id": external_id,
                "raw": row.text[:MAX_RAW_IN_QUARANTINE],
                "reason": reason,
            }
        )

    for row in rows:
        values, reason = validate_row(row.text, project)
        if values is None:
            refuse(row, reason or "invalid")
            continue
        if values["external_id"] in candidates:
            refuse(row, "duplicate external_id in the same file", values["external_id"])
            continue
        values["line_number"] = row.line_number
        candidates[values["external_id"]] = values

    item_rows = [
        {
            "project_id": batch.project_id,
            "batch_id": batch_id,
            "external_id": ext,
            "content_hash": content_hash(v["fields"]),
            "language": v["language"],
            "payload": v["fields"],
            "is_gold": v["gold_answer"] is not None,
            "status": "pending",
        }
        for ext, v in candidates.items()
    ]
    inserted = insert_returning_new(
        session, Item, item_rows, ["project_id", "external_id"], returning=("id", "external_id")
    )
    inserted_ids = {str(row.external_id): int(row.id) for row in inserted}
    counts.accepted = len(inserted_ids)

    leftovers = {r["external_id"]: r for r in item_rows if r["external_id"] not in inserted_ids}
    if leftovers:
        existing = session.execute(
            select(Item.external_id, Item.content_hash).where(
                Item.project_id == batch.project_id, Item.external_id.in_(list(leftovers))
            )
        ).all()
        for ext, known_hash in existing:
            if known_hash == leftovers[ext]["content_hash"]:
                counts.duplicates += 1
            else:
                # Never overwrite: the changed content is kept aside for ops to decide.
                counts.conflicts += 1
                line = candidates[ext]["line_number"]
                row = next(r for r in rows if r.line_number == line)
                refuse(
                    row,
                    "conflict: content differs from the item already ingested under this external_id",
                    ext,
                    conflict=True,
                )

    gold_rows = [
        {"item_id": inserted_ids[ext], "answer": v["gold_answer"]}
        for ext, v in candidates.items()
        if ext in inserted_ids and v["gold_answer"] is not None
    ]
    insert_ignoring_conflicts(session, GoldAnswer, gold_rows, ["item_id"])
    insert_ignoring_conflicts(session, QuarantinedRow, quarantine, ["batch_id", "line_number"])
    return counts
