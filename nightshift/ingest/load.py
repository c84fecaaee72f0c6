"""Ingest: client files of work items into a batch, row by row validated, bad rows quarantined.

A chunk is prepared (parsed rows validated against the project's input fields), may be gated
further (the Great Expectations chunk suite, run by the task layer), then stored in one
transaction. Storing is idempotent: (project, external_id) is the key, so a re-run or a resumed
crash adds nothing twice, and changed content under a known id is kept aside as a conflict.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from nightshift.ingest.formats import SourceRow
from nightshift.platform.audit import record_transition
from nightshift.platform.bounds import clean_text, json_problem, number_problem, text_problem
from nightshift.platform.errors import SourceError
from nightshift.platform.models import Batch, GoldAnswer, Item, QuarantinedRow, utcnow
from nightshift.platform.sql import (
    copy_if_all_new,
    data_error_name,
    insert_ignoring_conflicts,
    insert_returning_new,
    is_postgres,
    is_row_data_error,
)
from nightshift.projects.registry import get_project, project_spec
from nightshift.projects.spec import InputField, ProjectBody

DEFAULT_CHUNK_ROWS = 10_000
# A number written as text longer than this is refused before it is parsed (int() of thousands of
# digits is slow, and no field's value needs more).
MAX_NUMBER_TEXT = 40
CONFLICT = "conflict: content differs from the item already ingested under this external_id"


@dataclass
class IngestCounts:
    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    quarantined: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def add(self, other: IngestCounts) -> None:
        self.read += other.read
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.conflicts += other.conflicts
        self.quarantined += other.quarantined
        self.reasons.update(other.reasons)
        self.problems.extend(other.problems)

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "quarantined": self.quarantined,
            "quarantined_by_reason": dict(self.reasons),
            "problems": list(self.problems),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IngestCounts:
        return cls(
            read=data["read"],
            accepted=data["accepted"],
            duplicates=data["duplicates"],
            conflicts=data["conflicts"],
            quarantined=data["quarantined"],
            reasons=Counter(data["quarantined_by_reason"]),
            problems=list(data["problems"]),
        )


@dataclass
class PreparedChunk:
    """Rows ready to store (by external_id) and rows refused, with the counts so far."""

    items: dict[str, dict[str, Any]]
    refused: list[dict[str, Any]]
    counts: IngestCounts


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


@dataclass(frozen=True)
class OpenedBatch:
    batch_id: int
    created: bool
    completed: bool


def open_batch(session: Session, project_slug: str, path: Path, fmt: str = "jsonl") -> OpenedBatch:
    """The batch for this file: the existing one if the same bytes were ingested before."""
    project = get_project(session, project_slug)
    checksum = file_checksum(check_source(path))
    values = {
        "project_id": project.id,
        "source": str(path),
        "source_checksum": checksum,
        "status": "ingested",
        "spec_version": project.spec_version,
        "source_format": fmt,
        # The client's turnaround runs from when the batch arrives; ops hear when it is at risk.
        "deadline_at": utcnow() + dt.timedelta(hours=project_spec(session, project.id).project.turnaround_hours),
    }
    created = insert_ignoring_conflicts(session, Batch, [values], ["project_id", "source_checksum"]) > 0
    batch = session.scalars(
        select(Batch).where(Batch.project_id == project.id, Batch.source_checksum == checksum)
    ).one()
    if created:
        record_transition(session, "batch", batch.id, None, "ingested", "ingest", {"source": str(path)})
    return OpenedBatch(batch.id, created, batch.ingest_completed_at is not None)


def mark_ingest_complete(session: Session, batch_id: int) -> None:
    session.execute(update(Batch).where(Batch.id == batch_id).values(ingest_completed_at=utcnow()))


def content_hash(fields: dict[str, Any]) -> str:
    """Of the declared fields only, in canonical JSON: the same content hashes alike in any format."""
    return hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _coerce(spec_field: InputField, value: Any, textual: bool) -> tuple[Any, str | None]:
    """The value as the field's type, or why it is not. CSV text is parsed; JSON must match."""
    name, kind = spec_field.name, spec_field.type
    if kind == "text":
        if not isinstance(value, str):
            return None, f"field {name} must be text"
        if (problem := text_problem(value)) is not None:
            return None, f"field {name} {problem}"
        if not spec_field.min_length <= len(value) <= spec_field.max_length:
            return None, (
                f"field {name} has {len(value)} characters, allowed {spec_field.min_length}..{spec_field.max_length}"
            )
        return value, None
    if textual and isinstance(value, str):
        try:
            if kind in ("integer", "number") and len(value) > MAX_NUMBER_TEXT:
                return None, f"field {name} is a number out of range"
            if kind == "integer":
                value = int(value)
            elif kind == "number":
                value = float(value)
            elif value.lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.lower() in ("true", "1", "yes"), None
        except ValueError:
            pass
        if isinstance(value, str):
            return None, f"field {name} must be {'true or false' if kind == 'boolean' else f'a {kind}'}"
    if kind == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
        return None, f"field {name} must be an integer"
    if kind == "number" and (not isinstance(value, int | float) or isinstance(value, bool)):
        return None, f"field {name} must be a number"
    if kind == "boolean" and not isinstance(value, bool):
        return None, f"field {name} must be true or false"
    if kind in ("integer", "number") and (problem := number_problem(value)) is not None:
        return None, f"field {name} {problem}"
    return value, None


def validate_row(row: SourceRow, project: ProjectBody) -> tuple[dict[str, Any] | None, str | None]:
    """The row's item values, or the reason it is refused."""
    if row.data is None:
        return None, row.error or "unreadable row"
    data = row.data
    external_id = data.get("external_id")
    if external_id is None or (isinstance(external_id, str) and not external_id.strip()):
        return None, "missing external_id"
    if isinstance(external_id, bool) or not isinstance(external_id, str | int):
        return None, "external_id must be a string or an integer"
    if isinstance(external_id, int) and number_problem(external_id) is not None:
        return None, "external_id is a number out of range"
    if isinstance(external_id, str) and len(external_id) > 200:
        return None, "external_id longer than 200 characters"
    external_id = str(external_id).strip()
    if (problem := text_problem(external_id)) is not None:
        return None, f"external_id {problem}"
    fields: dict[str, Any] = {}
    for spec_field in project.input_fields:
        value = data.get(spec_field.name)
        if value is None:
            if spec_field.required:
                return None, f"missing required field {spec_field.name}"
            continue
        fields[spec_field.name], reason = _coerce(spec_field, value, row.textual)
        if reason:
            return None, reason
    language = fields.get("language") or data.get("language") or project.languages[0]
    if language not in project.languages:
        # The reason names the allowed languages, never the value sent: reasons reach ops' reports.
        return None, f"language is not one of the project's: {', '.join(project.languages)}"
    gold = data.get("gold_answer")
    if isinstance(gold, str) and row.textual:
        try:
            gold = orjson.loads(gold)
        except orjson.JSONDecodeError:
            return None, "gold_answer is not valid JSON"
    if gold is not None and not isinstance(gold, dict):
        return None, "gold_answer must be an object"
    if gold is not None and (problem := json_problem(gold)) is not None:
        return None, f"gold_answer {problem}"
    return {"external_id": external_id, "fields": fields, "language": language, "gold_answer": gold}, None


def _refusal(batch_id: int, source: str, row: SourceRow, reason: str, external_id: str | None = None) -> dict[str, Any]:
    return {
        "batch_id": batch_id,
        "source": source,
        "line_number": row.line_number,
        "external_id": external_id,
        "raw": row.text,
        "reason": reason,
        "file_level": row.file_level,
    }


def _external_id_of(row: SourceRow) -> str | None:
    """The row's id as sent, if it has a usable one: it lets ops find a refused row."""
    value = (row.data or {}).get("external_id")
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    if isinstance(value, int) and number_problem(value) is not None:
        return None
    return clean_text(str(value)[:200])


def prepare_chunk(batch_id: int, source: str, rows: list[SourceRow], project: ProjectBody) -> PreparedChunk:
    """Validate each row against the project's input fields; no database needed."""
    counts = IngestCounts()
    items: dict[str, dict[str, Any]] = {}
    refused: list[dict[str, Any]] = []
    for row in rows:
        if row.file_level:
            counts.problems.append(row.error or "file problem")
            refused.append(_refusal(batch_id, source, row, row.error or "file problem"))
            continue
        counts.read += 1
        values, reason = validate_row(row, project)
        if values is None:
            reason = reason or "invalid"
        elif values["external_id"] in items:
            reason = "duplicate external_id in the same file"
        if reason:
            counts.quarantined += 1
            counts.reasons[reason.split(":")[0]] += 1
            ext = values["external_id"] if values else _external_id_of(row)
            refused.append(_refusal(batch_id, source, row, reason, ext))
            continue
        assert values is not None
        values["row"] = row
        values["content_hash"] = content_hash(values["fields"])
        items[values["external_id"]] = values
    return PreparedChunk(items, refused, counts)


def refuse(prepared: PreparedChunk, batch_id: int, source: str, failures: dict[str, str]) -> None:
    """Move rows a later check failed (external_id → reason) from the items to the refused."""
    for external_id, reason in failures.items():
        values = prepared.items.pop(external_id, None)
        if values is None:
            continue
        prepared.counts.quarantined += 1
        prepared.counts.reasons[reason.split(":")[0]] += 1
        prepared.refused.append(_refusal(batch_id, source, values["row"], reason, external_id))


def set_aside_known(session: Session, batch_id: int, source: str, prepared: PreparedChunk) -> None:
    """Take items already stored out of the chunk: same content is a duplicate, changed content a
    conflict kept aside in quarantine. Done before gating and storing, so a re-run of a file sends
    nothing to the gate or the database but one lookup per chunk."""
    if not prepared.items:
        return
    project_id = session.get_one(Batch, batch_id).project_id
    for ext, stored_hash in _stored(session, project_id, list(prepared.items), Item.content_hash):
        values = prepared.items.pop(ext)
        if stored_hash == values["content_hash"]:
            prepared.counts.duplicates += 1
        else:
            # Never overwrite: the changed content is kept aside for ops to decide.
            prepared.counts.conflicts += 1
            prepared.refused.append(_refusal(batch_id, source, values["row"], CONFLICT, ext))


# One index probe per id, whatever the statistics say. While a file loads, the table grows far past
# what the planner last saw, and `external_id = ANY(…)` was then planned as a scan of every item
# of the project, filtered: 200 ms per chunk at 200,000 items, and growing with each chunk.
# LIMIT 1 keeps the subquery from being flattened into a join the planner could misjudge the same way.
STORED_BY_ID = """
SELECT k.external_id, s.value FROM unnest(%(ids)s::text[]) AS k(external_id)
CROSS JOIN LATERAL (
    SELECT {column} AS value FROM items
    WHERE project_id = %(project_id)s AND external_id = k.external_id LIMIT 1
) AS s
"""


# SQLite allows 32,766 parameters in a statement; a chunk may hold up to 100,000 rows.
SQLITE_IDS_PER_QUERY = 10_000


def _stored(session: Session, project_id: int, external_ids: list[str], column: Any) -> list[tuple[str, Any]]:
    """(external_id, column) of the items of the project stored under these ids."""
    if not external_ids:
        return []
    if is_postgres(session):
        raw = session.connection().connection.driver_connection
        assert raw is not None
        with raw.cursor() as cursor:
            cursor.execute(STORED_BY_ID.format(column=column.key), {"ids": external_ids, "project_id": project_id})
            return list(cursor.fetchall())
    found: list[tuple[str, Any]] = []
    for start in range(0, len(external_ids), SQLITE_IDS_PER_QUERY):
        ids = external_ids[start : start + SQLITE_IDS_PER_QUERY]
        query = select(Item.external_id, column).where(Item.project_id == project_id, Item.external_id.in_(ids))
        found.extend(session.execute(query).tuples())
    return found


def store_chunk(
    session: Session, batch_id: int, source: str, prepared: PreparedChunk, *, known_set_aside: bool = True
) -> IngestCounts:
    """Insert the chunk's new items and its refusals. Safe to repeat.

    known_set_aside=False is for a chunk expected to be all new (a file never seen): on PostgreSQL it
    is copied straight in, with no lookup; only if a unique key says otherwise are the known items
    set aside first, as set_aside_known would have done.

    Validation bounds every value first, so the database should take every row it is given. If it
    still refuses one, the chunk is not lost: the rows it refuses are found (by halves), quarantined
    with the database's reason class, and the rest stored."""
    batch = session.get_one(Batch, batch_id)
    before = copy.deepcopy(prepared.counts)
    try:
        with session.begin_nested():
            return _store(session, batch, source, prepared, known_set_aside)
    except Exception as exc:
        if not is_row_data_error(exc):
            raise
        reason = f"refused by the database: {data_error_name(exc)}"
    prepared.counts = before
    if not known_set_aside:
        set_aside_known(session, batch_id, source, prepared)
    for ext in _refused_by_database(session, batch, prepared.items):
        refuse(prepared, batch_id, source, {ext: reason})
    return _store(session, batch, source, prepared, known_set_aside=True)


def _store(session: Session, batch: Batch, source: str, prepared: PreparedChunk, known_set_aside: bool) -> IngestCounts:
    counts = prepared.counts
    items = prepared.items
    postgres = is_postgres(session)
    copied = postgres and not known_set_aside and copy_if_all_new(session, Item, _item_rows(batch, items))
    if not copied:
        if not known_set_aside:
            set_aside_known(session, batch.id, source, prepared)
        new_rows = _item_rows(batch, items)
        copied = postgres and copy_if_all_new(session, Item, new_rows)
    if copied:
        counts.accepted = len(items)
        inserted_ids = _gold_item_ids(session, batch.project_id, items)
    else:
        inserted = insert_returning_new(
            session, Item, new_rows, ["project_id", "external_id"], returning=("id", "external_id")
        )
        inserted_ids = {str(row.external_id): int(row.id) for row in inserted}
        counts.accepted = len(inserted_ids)
        counts.duplicates += len(new_rows) - len(inserted_ids)  # lost a race with a concurrent ingest
    _store_gold(session, items, inserted_ids)
    insert_ignoring_conflicts(session, QuarantinedRow, prepared.refused, ["batch_id", "line_number"])
    return counts


def _store_gold(session: Session, items: dict[str, dict[str, Any]], inserted_ids: dict[str, int]) -> None:
    gold_rows = [
        {"item_id": inserted_ids[ext], "answer": items[ext]["gold_answer"]}
        for ext in inserted_ids
        if items[ext]["gold_answer"] is not None
    ]
    insert_ignoring_conflicts(session, GoldAnswer, gold_rows, ["item_id"])


class _Probe(Exception):
    """Rolls a trial insert back."""


def _refused_by_database(session: Session, batch: Batch, items: dict[str, dict[str, Any]]) -> list[str]:
    """The external ids of the items the database refuses, found by trial inserts of halves, each
    rolled back: a few dozen savepoints for one bad row in 10,000, not one per row."""

    def fits(group: list[str]) -> bool:
        try:
            with session.begin_nested():
                rows = _item_rows(batch, {ext: items[ext] for ext in group})
                inserted = insert_returning_new(
                    session, Item, rows, ["project_id", "external_id"], returning=("id", "external_id")
                )
                _store_gold(session, items, {str(row.external_id): int(row.id) for row in inserted})
                raise _Probe
        except _Probe:
            return True
        except Exception as exc:
            if is_row_data_error(exc):
                return False
            raise

    refused: list[str] = []
    groups = [list(items)]
    while groups:
        group = groups.pop()
        if not group or fits(group):
            continue
        if len(group) == 1:
            refused.append(group[0])
            continue
        half = len(group) // 2
        groups += [group[:half], group[half:]]
    return refused


def _item_rows(batch: Batch, items: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "project_id": batch.project_id,
            "batch_id": batch.id,
            "external_id": ext,
            "content_hash": values["content_hash"],
            "language": values["language"],
            "payload": values["fields"],
            "is_gold": values["gold_answer"] is not None,
            "status": "pending",
        }
        for ext, values in items.items()
    ]


def _gold_item_ids(session: Session, project_id: int, items: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Ids of the gold items just copied in: their answers go to a table of their own."""
    gold = [ext for ext, values in items.items() if values["gold_answer"] is not None]
    return {ext: int(item_id) for ext, item_id in _stored(session, project_id, gold, Item.id)}


def load_chunk(session: Session, batch_id: int, source: str, rows: list[SourceRow]) -> IngestCounts:
    """Prepare and store one chunk (row validation only)."""
    project = project_spec(session, session.get_one(Batch, batch_id).project_id).project
    prepared = prepare_chunk(batch_id, source, rows, project)
    set_aside_known(session, batch_id, source, prepared)
    return store_chunk(session, batch_id, source, prepared)
