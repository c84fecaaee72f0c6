"""Acceptance: a client accepts or rejects delivered records within its project's window.

A rejection (with its reason) sends the record's item back to adjudication, unbilled, and its
batch back to review, so the next delivery carries the settled record as a new version, the
reason in that version's change log. When the window of the latest version ends, every record not
rejected is accepted. Verdicts are one row per record and version (a unique key), so a verdict
sent twice counts once, and the batch row is locked while verdicts are taken, so a verdict and
the window's end or a redelivery never cross.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import and_, delete, exists, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from nightshift.platform.audit import record_transition
from nightshift.platform.bounds import clean_text
from nightshift.platform.errors import NightshiftError
from nightshift.platform.models import (
    Assignment,
    AuditLog,
    Batch,
    Delivery,
    Item,
    ItemResult,
    RecordVerdict,
    Submission,
    as_utc,
)
from nightshift.platform.sql import insert_returning_new, is_postgres
from nightshift.projects.registry import project_body
from nightshift.review.settle import send_to_adjudication

MAX_VERDICTS = 1_000
MAX_REASON = 2_000


@dataclass(frozen=True)
class Verdict:
    external_id: str
    verdict: Literal["accept", "reject"]
    reason: str | None = None


@dataclass(frozen=True)
class Window:
    version: int
    delivered_at: dt.datetime
    ends_at: dt.datetime


@dataclass
class VerdictReport:
    version: int
    accepted: int = 0
    rejected: int = 0
    already_decided: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def window(session: Session, batch_id: int) -> Window | None:
    """The latest delivered version's window, or None (no window in the spec, nothing delivered)."""
    batch = session.get_one(Batch, batch_id)
    days = project_body(session, batch.project_id).acceptance_days
    if days is None:
        return None
    latest = session.execute(
        select(Delivery.version, Delivery.created_at)
        .where(Delivery.batch_id == batch_id, Delivery.status == "delivered")
        .order_by(Delivery.version.desc())
        .limit(1)
    ).first()
    if latest is None:
        return None
    # From when the version landed (its last page taken), not when it was built: retries can take
    # hours, and the client cannot judge what it does not have.
    landed = session.scalar(
        select(func.max(AuditLog.at)).where(
            AuditLog.entity == "batch",
            AuditLog.entity_id == batch_id,
            AuditLog.to_status == "delivered",
            AuditLog.actor == "deliver",
        )
    )
    at = as_utc(max(landed, latest.created_at) if landed is not None else latest.created_at)
    return Window(latest.version, at, at + dt.timedelta(days=days))


def record_verdicts(
    session: Session, batch_id: int, verdicts: list[Verdict], client_slug: str, now: dt.datetime
) -> VerdictReport:
    """Take the client's verdicts on the latest delivered version's records (by external id)."""
    if not verdicts:
        raise NightshiftError("no verdicts given")
    if len(verdicts) > MAX_VERDICTS:
        raise NightshiftError(f"at most {MAX_VERDICTS:,} verdicts at once")
    batch = session.execute(select(Batch).where(Batch.id == batch_id).with_for_update()).scalar_one()
    if batch.purged_at is not None:
        raise NightshiftError(f"batch {batch_id}'s content was purged under its client's retention")
    open_window = window(session, batch_id)
    if open_window is None:
        raise NightshiftError(f"batch {batch_id} has no acceptance window (none in its project, or not delivered)")
    if batch.status != "delivered":
        raise NightshiftError(f"batch {batch_id} is {batch.status}: verdicts wait for its next delivery")
    if now >= open_window.ends_at:
        raise NightshiftError(
            f"the acceptance window of version {open_window.version} closed at {open_window.ends_at:%Y-%m-%d %H:%M} UTC"
        )
    report = VerdictReport(open_window.version)
    seen: set[str] = set()
    wanted: dict[str, Verdict] = {}
    for verdict in verdicts:
        if verdict.external_id in seen:
            raise NightshiftError(f"record {verdict.external_id[:200]!r} is given twice")
        seen.add(verdict.external_id)
        if verdict.verdict == "reject" and not (verdict.reason or "").strip():
            raise NightshiftError(f"record {verdict.external_id[:200]!r}: a rejection needs a reason")
        wanted[verdict.external_id] = verdict
    items = dict(
        session.execute(
            select(Item.external_id, Item.id).where(
                Item.batch_id == batch_id,
                Item.external_id.in_(list(wanted)),
                Item.status == "delivered",
                Item.is_gold.is_(False),
            )
        ).all()
    )
    report.unknown = sorted(set(wanted) - set(items))
    rows = [
        {
            "batch_id": batch_id,
            "item_id": items[ext],
            "version": open_window.version,
            "verdict": "accepted" if v.verdict == "accept" else "rejected",
            "reason": clean_text(v.reason.strip()[:MAX_REASON]) if v.verdict == "reject" and v.reason else None,
            "decided_by": f"client:{client_slug}"[:100],
            "decided_at": now,
        }
        for ext, v in wanted.items()
        if ext in items
    ]
    inserted = insert_returning_new(session, RecordVerdict, rows, ["item_id", "version"], ("item_id",))
    taken = {int(row.item_id) for row in inserted}
    by_id = {row["item_id"]: row for row in rows}
    report.already_decided = sorted(ext for ext, item_id in items.items() if item_id not in taken)
    rejected = {i: str(by_id[i]["reason"]) for i in taken if by_id[i]["verdict"] == "rejected"}
    report.rejected = len(rejected)
    report.accepted = len(taken) - len(rejected)
    if rejected:
        _rework(session, batch, rejected, client_slug)
    return report


def _rework(session: Session, batch: Batch, reasons: dict[int, str], client_slug: str) -> None:
    """The rejected records' items go to adjudication (their final answers dropped, so settling
    them writes new ones) and the batch back to review."""
    session.execute(delete(ItemResult).where(ItemResult.item_id.in_(list(reasons))))
    send_to_adjudication(session, {i: f"the client rejected the record: {why}"[:1000] for i, why in reasons.items()})
    record_transition(
        session,
        "batch",
        batch.id,
        batch.status,
        "in_review",
        f"client:{client_slug}",
        {"reason": f"the client rejected {len(reasons)} record{'s' if len(reasons) != 1 else ''}"},
    )
    batch.status = "in_review"


def open_rejections(session: Session, batch_id: int) -> dict[int, str]:
    """Rejected records not yet redelivered: item id → the client's reason."""
    found = session.execute(
        select(RecordVerdict.item_id, RecordVerdict.reason).where(
            RecordVerdict.batch_id == batch_id,
            RecordVerdict.verdict == "rejected",
            RecordVerdict.redelivered_version.is_(None),
        )
    )
    return {int(item_id): reason or "" for item_id, reason in found}


def mark_redelivered(session: Session, batch_id: int, version: int) -> int:
    """The rejections this version carries the rework of."""
    result = session.execute(
        update(RecordVerdict)
        .where(
            RecordVerdict.batch_id == batch_id,
            RecordVerdict.verdict == "rejected",
            RecordVerdict.redelivered_version.is_(None),
        )
        .values(redelivered_version=version)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def close_windows(session: Session, now: dt.datetime) -> dict[int, int]:
    """Every delivered record of a version whose window has ended, with no verdict, is accepted:
    one set-based statement per batch, under the batch's lock (as verdicts are taken), once per
    version (a version already closed is skipped). Batch id → records accepted."""
    closed: dict[int, int] = {}
    for batch_id in session.scalars(
        select(Batch.id).where(Batch.status == "delivered", Batch.purged_at.is_(None)).order_by(Batch.id)
    ):
        ended = window(session, batch_id)
        if ended is None or now < ended.ends_at or _closed(session, batch_id, ended.version):
            continue
        locked = session.execute(select(Batch.status).where(Batch.id == batch_id).with_for_update()).scalar_one()
        if locked != "delivered":
            continue  # rejected meanwhile: its next version has a window of its own
        # NOT EXISTS, not NOT IN: an anti-join whatever the number of verdicts.
        decided = exists().where(RecordVerdict.item_id == Item.id, RecordVerdict.version == ended.version)
        undecided = select(
            literal(batch_id),
            Item.id,
            literal(ended.version),
            literal("accepted"),
            literal("window"),
            literal(now),
        ).where(Item.batch_id == batch_id, Item.status == "delivered", Item.is_gold.is_(False), ~decided)
        dialect = postgresql if is_postgres(session) else sqlite
        # Counted from RETURNING: psycopg reports no row count for INSERT … SELECT here.
        count = len(
            session.execute(
                dialect.insert(RecordVerdict)
                .from_select(["batch_id", "item_id", "version", "verdict", "decided_by", "decided_at"], undecided)
                .on_conflict_do_nothing(index_elements=["item_id", "version"])
                .returning(RecordVerdict.item_id)
            ).all()
        )
        # Marked closed even with nothing left to accept: the next night skips it.
        record_transition(
            session, "batch", batch_id, "delivered", "delivered", "window", {"acceptance_closed": ended.version}
        )
        if count:
            closed[batch_id] = count
    return closed


def _closed(session: Session, batch_id: int, version: int) -> bool:
    return bool(
        session.scalar(
            select(
                exists().where(
                    AuditLog.entity == "batch",
                    AuditLog.entity_id == batch_id,
                    AuditLog.actor == "window",
                    AuditLog.detail["acceptance_closed"].as_integer() == version,
                )
            )
        )
    )


def summary(session: Session, batch_id: int) -> dict[str, Any]:
    """The latest version's verdicts and window, for the client and ops."""
    open_window = window(session, batch_id)
    if open_window is None:
        return {"version": None, "window_ends_at": None, "accepted": 0, "rejected": 0, "undecided": 0}
    counts = Counter(
        dict(
            session.execute(
                select(RecordVerdict.verdict, func.count())
                .where(RecordVerdict.batch_id == batch_id, RecordVerdict.version == open_window.version)
                .group_by(RecordVerdict.verdict)
            ).all()
        )
    )
    delivered = session.scalar(
        select(func.count()).where(Item.batch_id == batch_id, Item.status == "delivered", Item.is_gold.is_(False))
    )
    return {
        "version": open_window.version,
        "window_ends_at": open_window.ends_at.isoformat(),
        "accepted": counts["accepted"],
        "rejected": counts["rejected"],
        "undecided": max(int(delivered or 0) - counts["accepted"] - counts["rejected"], 0),
    }


def rates(session: Session, project_id: int) -> dict[str, Any]:
    """Acceptance across the project's versions, and per expert whose accepted annotations made a
    record (the evidence ops read beside gold and agreement): records judged and rejected."""
    by_verdict = Counter(
        dict(
            session.execute(
                select(RecordVerdict.verdict, func.count())
                .join(Item, Item.id == RecordVerdict.item_id)
                .where(Item.project_id == project_id)
                .group_by(RecordVerdict.verdict)
            ).all()
        )
    )
    judged = by_verdict["accepted"] + by_verdict["rejected"]
    experts: dict[int, Counter[str]] = {}
    for expert_id, verdict, n in session.execute(
        select(Assignment.expert_id, RecordVerdict.verdict, func.count())
        .join(Assignment, and_(Assignment.item_id == RecordVerdict.item_id, Assignment.role == "annotate"))
        .join(Submission, Submission.assignment_id == Assignment.id)
        .join(Item, Item.id == RecordVerdict.item_id)
        .where(Item.project_id == project_id, Assignment.status == "accepted")
        .group_by(Assignment.expert_id, RecordVerdict.verdict)
    ):
        experts.setdefault(int(expert_id), Counter())[verdict] += int(n)
    return {
        "accepted": by_verdict["accepted"],
        "rejected": by_verdict["rejected"],
        "acceptance_rate": round(by_verdict["accepted"] / judged, 4) if judged else None,
        "experts": {
            expert_id: {
                "records": c["accepted"] + c["rejected"],
                "rejected": c["rejected"],
                "acceptance_rate": round(c["accepted"] / (c["accepted"] + c["rejected"]), 4),
            }
            for expert_id, c in sorted(experts.items())
        },
    }
