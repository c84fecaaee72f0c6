"""Retention: a client's delivered content purged once its period has passed since the batch's last
delivery. What stays: every id, each item's content hash, a SHA-256 in place of each answer, the
counts and statuses, the deliveries' manifests (with their files' checksums) and the audit trail.
What goes: the items' fields, answers and drafts, reviewers' reasons and corrections, model
prompts and answers, quarantined rows' raw text, webhook pages, and the delivered files.

A batch is purged in one transaction that first claims it (purged_at set only where still unset),
so two runs never purge it twice and a failed run leaves it whole; files are removed after the
commit, and a later run removes any a crash left behind.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Select, bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from nightshift.delivery.acceptance import window
from nightshift.platform.audit import record_transition
from nightshift.platform.models import (
    Appeal,
    Assignment,
    AssignmentDraft,
    Batch,
    Client,
    Delivery,
    DeliveryMessage,
    GoldAnswer,
    Item,
    ItemResult,
    ModelResponse,
    ModelRun,
    Project,
    QuarantinedRow,
    RecordVerdict,
    Review,
    Submission,
)

# Rows rewritten per statement: bounded memory whatever the batch's size.
CHUNK = 2_000
# What an appeal's reason reads once its batch is purged (the column holds no NULL).
PURGED_TEXT = "(purged)"


@dataclass(frozen=True)
class Due:
    batch_id: int
    client: str
    retention_days: int
    last_delivered_at: dt.datetime


@dataclass
class Purged:
    batch_id: int
    rows: dict[str, int] = field(default_factory=dict)
    folders: list[str] = field(default_factory=list)


def purged_answer(answer: Any) -> dict[str, Any]:
    """What stands in for a purged answer: that it was purged, and the SHA-256 of its canonical JSON,
    so a record a client kept can still be matched to what was delivered."""
    canonical = orjson.dumps(answer, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return {"purged": True, "sha256": hashlib.sha256(canonical).hexdigest()}


def due(session: Session, now: dt.datetime, client: str | None = None) -> list[Due]:
    """Delivered batches, not yet purged, whose client's period has passed since their last delivery."""
    last = (
        select(Delivery.batch_id, func.max(Delivery.created_at).label("at"))
        .where(Delivery.status == "delivered")
        .group_by(Delivery.batch_id)
        .subquery()
    )
    query = (
        select(Batch.id, Client.slug, Client.retention_days, last.c.at)
        .join(Project, Project.id == Batch.project_id)
        .join(Client, Client.id == Project.client_id)
        .join(last, last.c.batch_id == Batch.id)
        .where(Batch.status == "delivered", Batch.purged_at.is_(None), Client.retention_days.is_not(None))
        .order_by(Batch.id)
    )
    if client is not None:
        query = query.where(Client.slug == client)
    found = []
    for batch_id, slug, days, at in session.execute(query):
        at = at if at.tzinfo else at.replace(tzinfo=dt.UTC)  # SQLite hands back naive UTC
        if at + dt.timedelta(days=days) > now:
            continue
        # A client still judging its records keeps them until its acceptance window ends.
        judging = window(session, batch_id)
        if judging is not None and now < judging.ends_at:
            continue
        found.append(Due(batch_id, slug, days, at))
    return found


def purge_batch(session: Session, batch_id: int, now: dt.datetime, actor: str) -> Purged | None:
    """Purge one batch's content; None if it is not a delivered, unpurged batch (another run took it)."""
    claimed = _count(
        session.execute(
            update(Batch)
            .where(Batch.id == batch_id, Batch.status == "delivered", Batch.purged_at.is_(None))
            .values(purged_at=now)
        )
    )
    if not claimed:
        return None
    done = Purged(batch_id)
    items = select(Item.id).where(Item.batch_id == batch_id)
    assignments = select(Assignment.id).where(Assignment.item_id.in_(items))
    rows = done.rows
    rows["items"] = _set(session, Item, Item.batch_id == batch_id, payload={}, status_reason=None)
    rows["gold_answers"] = _hash_answers(session, GoldAnswer, GoldAnswer.item_id, GoldAnswer.item_id.in_(items))
    rows["submissions"] = _hash_answers(session, Submission, Submission.id, Submission.assignment_id.in_(assignments))
    rows["item_results"] = _hash_answers(session, ItemResult, ItemResult.item_id, ItemResult.item_id.in_(items))
    # How each was reached can quote an adjudication's reason (a client's words): emptied too.
    _set(session, ItemResult, ItemResult.item_id.in_(items), method={})
    rows["assignment_reasons"] = _set(
        session, Assignment, Assignment.item_id.in_(items) & Assignment.status_reason.is_not(None), status_reason=None
    )
    rows["drafts"] = _count(
        session.execute(delete(AssignmentDraft).where(AssignmentDraft.assignment_id.in_(assignments)))
    )
    rows["reviews"] = _set(
        session, Review, Review.reviewer_assignment_id.in_(assignments), reason=None, corrected_answer=None
    )
    rows["model_responses"] = _set(session, ModelResponse, ModelResponse.item_id.in_(items), content=None)
    rows["model_runs"] = _set(session, ModelRun, ModelRun.assignment_id.in_(assignments), prompt="", content=None)
    rows["verdict_reasons"] = _set(session, RecordVerdict, RecordVerdict.batch_id == batch_id, reason=None)
    # An appeal's reason and decision argue about the item's content.
    submissions = select(Submission.id).where(Submission.assignment_id.in_(assignments))
    rows["appeals"] = _set(
        session, Appeal, Appeal.submission_id.in_(submissions), reason=PURGED_TEXT, decision_note=None
    )
    rows["quarantined_rows"] = _set(session, QuarantinedRow, QuarantinedRow.batch_id == batch_id, raw="")
    deliveries = select(Delivery.id).where(Delivery.batch_id == batch_id)
    rows["webhook_pages"] = _set(session, DeliveryMessage, DeliveryMessage.delivery_id.in_(deliveries), records="[]")
    # A page of an older version still waiting to be sent would go out empty: it is given up.
    _set(
        session,
        DeliveryMessage,
        DeliveryMessage.delivery_id.in_(deliveries) & DeliveryMessage.status.in_(("pending", "retrying")),
        status="dead",
        last_error="purged under the client's retention",
    )
    paths = session.scalars(select(Delivery.file_path).where(Delivery.batch_id == batch_id))
    done.folders = sorted({str(Path(p).parent) for p in paths})
    record_transition(session, "batch", batch_id, "delivered", "delivered", actor, {"purged": rows})
    return done


def leftover_folders(session: Session, batch_ids: Iterable[int] | None = None) -> list[str]:
    """Delivered folders of purged batches still on disk (a run that stopped between its commit
    and removing them)."""
    query = select(Delivery.file_path).join(Batch, Batch.id == Delivery.batch_id).where(Batch.purged_at.is_not(None))
    if batch_ids is not None:
        query = query.where(Batch.id.in_(list(batch_ids)))
    return sorted({str(Path(p).parent) for p in session.scalars(query) if Path(p).parent.exists()})


def remove_folders(folders: Iterable[str]) -> int:
    removed = 0
    for folder in folders:
        if Path(folder).exists():
            shutil.rmtree(folder)
            removed += 1
    return removed


def _set(session: Session, model: Any, where: Any, **values: Any) -> int:
    return _count(session.execute(update(model).where(where).values(**values)))


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _hash_answers(session: Session, model: Any, key: Any, where: Any) -> int:
    """Each answer replaced by purged_answer(answer), a chunk of rows at a time (hashed in Python:
    SQLite has no SHA-256), each chunk one executemany."""
    table = model.__table__
    write = (
        update(table)
        .where(table.c[key.key] == bindparam("row_key"))
        .values(answer=bindparam("purged"))
        .execution_options(synchronize_session=False)
    )
    count = 0
    last: Any = None
    while True:
        query: Select[Any] = select(key, model.answer).where(where).order_by(key).limit(CHUNK)
        if last is not None:
            query = query.where(key > last)
        chunk = session.execute(query).all()
        if not chunk:
            return count
        session.connection().execute(write, [{"row_key": k, "purged": purged_answer(v)} for k, v in chunk])
        count += len(chunk)
        last = chunk[-1][0]
