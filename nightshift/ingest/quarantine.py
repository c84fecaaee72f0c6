"""The quarantine: rows that could not be accepted, for ops to see, fix and load again."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightshift.ingest.formats import SourceRow
from nightshift.ingest.rows import prepare_chunk
from nightshift.ingest.store import CONFLICT, set_aside_known, store_chunk
from nightshift.platform.errors import NightshiftError, NotFoundError
from nightshift.platform.models import Batch, Item, QuarantinedRow, utcnow
from nightshift.projects.registry import project_spec


@dataclass(frozen=True)
class QuarantineEntry:
    id: int
    batch_id: int
    source: str
    line_number: int
    external_id: str | None
    reason: str
    raw: str
    resolved_item_id: int | None


def list_quarantined(
    session: Session, batch_id: int | None = None, include_resolved: bool = False, limit: int = 100
) -> list[QuarantineEntry]:
    query = select(QuarantinedRow).order_by(QuarantinedRow.id).limit(limit)
    if batch_id is not None:
        query = query.where(QuarantinedRow.batch_id == batch_id)
    if not include_resolved:
        query = query.where(QuarantinedRow.resolved_at.is_(None))
    return [
        QuarantineEntry(r.id, r.batch_id, r.source, r.line_number, r.external_id, r.reason, r.raw, r.resolved_item_id)
        for r in session.scalars(query)
    ]


def retry(session: Session, row_id: int, replacement: str | None = None) -> int:
    """Validate a quarantined row again (as fixed by ops, or as it was) and load it; returns the item id."""
    quarantined = session.get(QuarantinedRow, row_id)
    if quarantined is None:
        raise NotFoundError(f"unknown quarantined row {row_id}")
    if quarantined.resolved_at is not None:
        raise NightshiftError(f"quarantined row {row_id} was already loaded as item {quarantined.resolved_item_id}")
    if quarantined.file_level:
        raise NightshiftError(f"quarantined row {row_id} is a problem with the whole file; fix the file and ingest it")
    text = replacement if replacement is not None else quarantined.raw
    batch = session.get_one(Batch, quarantined.batch_id)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NightshiftError(f"still refused: not valid JSON: {exc.msg}") from None
    row = SourceRow(
        quarantined.line_number,
        text,
        data if isinstance(data, dict) else None,
        None if isinstance(data, dict) else "expected a JSON object",
    )
    prepared = prepare_chunk(batch.id, quarantined.source, [row], project_spec(session, batch.project_id).project)
    if not prepared.items:
        raise NightshiftError(f"still refused: {prepared.refused[0]['reason']}")
    prepared.refused = []
    external_id = next(iter(prepared.items))
    set_aside_known(session, batch.id, quarantined.source, prepared)
    counts = store_chunk(session, batch.id, quarantined.source, prepared)
    if counts.conflicts:
        raise NightshiftError(f"still refused: {CONFLICT}")
    item_id = session.scalars(
        select(Item.id).where(Item.project_id == batch.project_id, Item.external_id == external_id)
    ).one()
    quarantined.resolved_at = utcnow()
    quarantined.resolved_item_id = item_id
    return item_id


def quarantined_entry(session: Session, row_id: int) -> QuarantineEntry:
    """One quarantined row, or one line saying there is none."""
    r = session.get(QuarantinedRow, row_id)
    if r is None:
        raise NightshiftError(f"unknown quarantined row {row_id}")
    return QuarantineEntry(
        r.id, r.batch_id, r.source, r.line_number, r.external_id, r.reason, r.raw, r.resolved_item_id
    )
