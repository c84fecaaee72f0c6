"""Ingest: client files of work items into a batch, row by row validated, bad rows quarantined.

A chunk is prepared (parsed rows validated against the project's input fields), may be gated
further (the Great Expectations chunk suite, run by the task layer), then stored in one
transaction. Storing is idempotent: (project, external_id) is the key, so a re-run or a resumed
crash adds nothing twice, and changed content under a known id is kept aside as a conflict.
"""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from nightshift.ingest.formats import SourceRow
from nightshift.ingest.rows import IngestCounts, PreparedChunk, mask_refused, prepare_chunk, refusal, refuse
from nightshift.platform.models import Batch, GoldAnswer, Item, QuarantinedRow
from nightshift.platform.sql import (
    copy_if_all_new,
    data_error_name,
    insert_ignoring_conflicts,
    insert_returning_new,
    is_postgres,
    is_row_data_error,
)
from nightshift.projects.registry import project_spec

CONFLICT = "conflict: content differs from the item already ingested under this external_id"

# The batch key's statement trigger (migration 0015) reads the items a COPY inserted from a
# transition table, which holds each whole row. Past work_mem (4 MB by default) that table is
# written to a temporary file and read back (docs/performance.md). A chunk of the default size
# fits in this; a larger one spills as before, still correct.
TRANSITION_MEMORY = "64MB"


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
            prepared.refused.append(refusal(batch_id, source, values["row"], CONFLICT, ext))


# One index probe per id, whatever the statistics say. While a file loads, the table grows far past
# what the planner last saw, and `external_id = ANY(…)` was then planned as a scan of every item
# of the project, filtered, a cost that grew with each chunk.
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
        found.extend(session.execute(query))
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
    if is_postgres(session):
        # For this transaction only (a savepoint rolled back would undo it: set before one opens).
        session.execute(text(f"SET LOCAL work_mem = '{TRANSITION_MEMORY}'"))
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
    mask_refused(prepared.refused, project_spec(session, batch.project_id).project)
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
            "personal_data": values.get("personal_data"),
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
