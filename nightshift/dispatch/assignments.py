"""A plan's assignments written and its batch moved on; overdue assignments expired."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from sqlalchemy import update
from sqlalchemy.orm import Session

from nightshift.dispatch.plan import STAFFABLE, DispatchReport, plan_dispatch
from nightshift.platform.audit import record_transition
from nightshift.platform.models import Assignment, Batch, Expert, Item
from nightshift.platform.sql import insert_new, update_grouped, update_ids
from nightshift.review.reliability import update_reliability


def write_assignments(session: Session, rows: list[tuple[int, int]], due_at: dt.datetime) -> int:
    """Store planned assignments and mark their items assigned, in the caller's transaction, so an
    item is assigned exactly when its assignments are stored. Rows already there are left alone.
    Returns how many assignments were new."""
    # In expert order: the foreign-key checks and the (expert, status) index then walk the experts'
    # pages in order instead of at random (the shard's items are a narrow id range either way).
    values = [
        {"item_id": item_id, "expert_id": expert_id, "role": "annotate", "status": "assigned", "due_at": due_at}
        for item_id, expert_id in sorted(rows, key=lambda row: row[1])
    ]
    # The first run of a plan writes only new rows; a re-run finds some there already.
    written = insert_new(session, Assignment, values, ["item_id", "expert_id", "role"])
    _mark_assigned(session, sorted({item_id for item_id, _ in rows}))
    return written


def _mark_assigned(session: Session, item_ids: list[int]) -> None:
    update_ids(session, Item, item_ids, {"status": "assigned", "status_reason": None}, Item.status.in_(STAFFABLE))


def finish_dispatch(
    session: Session,
    batch_id: int,
    staffed: list[int],
    unassignable: dict[int, str],
    projected_finish: dt.datetime | None = None,
) -> None:
    """After the plan's rows are written: staffed items the writes did not touch (their annotators
    were already there, say after a crash) are assigned; the rest are marked unassignable. The
    plan's projected finish is kept on the batch for status and deadline warnings."""
    _mark_assigned(session, staffed)
    update_grouped(
        session,
        Item,
        unassignable,
        lambda why: {"status": "unassignable", "status_reason": why},
        Item.status.in_(STAFFABLE),
    )
    batch = session.get_one(Batch, batch_id)
    if projected_finish is not None:
        batch.projected_finish_at = projected_finish
    if batch.status == "ingested":
        batch.status = "dispatched"
        record_transition(session, "batch", batch_id, "ingested", "dispatched", "dispatch")


def dispatch_batch(session: Session, batch_id: int, now: dt.datetime) -> DispatchReport:
    """Plan, write and finish in one transaction: for callers without a Prefect fan-out."""
    plan = plan_dispatch(session, batch_id, now)
    plan.report.assignments = write_assignments(session, plan.rows, plan.due_at)
    finish_dispatch(session, batch_id, plan.staffed, plan.report.unassignable, plan.report.projected_finish)
    return plan.report


def expire_overdue(session: Session, now: dt.datetime) -> int:
    """Assignments past their due time expire, count as a miss against their expert, and their
    items go back to be staffed again (never by the same expert: dispatch remembers who held them)."""
    overdue = session.execute(
        update(Assignment)
        .where(Assignment.open_expert_id.is_not(None), Assignment.due_at < now)
        .values(status="expired", status_reason="not submitted by its due time")
        .returning(Assignment.item_id, Assignment.expert_id)
        .execution_options(synchronize_session=False)
    ).all()
    if not overdue:
        return 0
    update_ids(
        session,
        Item,
        sorted({item_id for item_id, _ in overdue}),
        {"status": "rework", "status_reason": "an assignment expired"},
        Item.status == "assigned",
    )
    misses = Counter(expert_id for _, expert_id in overdue)
    update_grouped(session, Expert, misses, lambda n: {"missed_count": Expert.missed_count + n})
    update_reliability(session, list(misses))
    return len(overdue)
