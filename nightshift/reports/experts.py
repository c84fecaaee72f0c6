"""An expert's record for ops: who they are, what they can take, their work so far and how it went."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nightshift.platform.errors import NotFoundError
from nightshift.platform.models import (
    Assignment,
    AuditLog,
    Expert,
    ExpertLanguage,
    ExpertSkill,
    Item,
    RecordVerdict,
)
from nightshift.platform.sql import matches_any
from nightshift.review.quality import Quality
from nightshift.review.reliability import PRIOR, Evidence, experts_of_batch, gather_evidence


def expert_profile(session: Session, handle: str) -> dict[str, Any]:
    """An expert's record for ops: who, what they can take, their work so far and how it went."""
    expert = session.scalars(select(Expert).where(Expert.handle == handle)).one_or_none()
    if expert is None:
        raise NotFoundError(f"unknown expert {handle!r}")
    work = session.execute(
        select(Assignment.role, Assignment.status, func.count())
        .where(Assignment.expert_id == expert.id)
        .group_by(Assignment.role, Assignment.status)
    )
    evidence = gather_evidence(session, [expert.id])[expert.id]
    history = session.execute(
        select(AuditLog.at, AuditLog.from_status, AuditLog.to_status, AuditLog.actor)
        .where(AuditLog.entity == "expert", AuditLog.entity_id == expert.id)
        .order_by(AuditLog.id)
    )
    return {
        "handle": expert.handle,
        "tier": expert.tier,
        "status": expert.status,
        "timezone": expert.timezone,
        "window": f"{expert.work_start_hour:02d}:00 for {expert.work_hours} h local",
        "capacity": expert.capacity,
        "skills": sorted(session.scalars(select(ExpertSkill.skill).where(ExpertSkill.expert_id == expert.id))),
        "languages": sorted(
            session.scalars(select(ExpertLanguage.language).where(ExpertLanguage.expert_id == expert.id))
        ),
        "reliability": expert.reliability,
        "reliability_prior": PRIOR,
        "quality": _quality(evidence.quality()),
        "gold": {"answered": evidence.gold_seen, "correct": evidence.gold_correct},
        "agreement": {"answered": evidence.agreement_seen, "agreed": evidence.agreed},
        "open_items": {
            "answered": len(evidence.peers),
            "likely_right": round(sum(o.right for o in evidence.peers), 1),
        },
        "reviews": {"judged": evidence.reviews_seen, "right": evidence.reviews_right},
        "missed_deadlines": expert.missed_count,
        "assignments": {f"{role}/{status}": n for role, status, n in work},
        "status_history": [
            {"at": at.isoformat(), "from": old, "to": new, "by": actor} for at, old, new, actor in history
        ],
    }


def _quality(quality: Quality) -> dict[str, Any]:
    low, high = quality.interval()
    return {
        "estimate": round(quality.mean, 3),
        "interval_90": [round(low, 3), round(high, 3)],
        "evidence": round(quality.weight, 1),
    }


def quality_table(
    session: Session, batch_id: int, evidence: Mapping[int, Evidence] | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Every expert with work in the batch: their quality now (estimate, 90% interval, how much
    evidence it rests on), status and answers in the batch, least sure of first: for ops.
    evidence: the batch's experts' as the review just gathered it; limit: only the first rows."""
    experts = experts_of_batch(session, batch_id)
    if evidence is None:
        evidence = gather_evidence(session, experts)
    answers = dict(
        session.execute(
            select(Assignment.expert_id, func.count())
            .join(Item, Item.id == Assignment.item_id)
            .where(Item.batch_id == batch_id, Assignment.status.in_(("submitted", "accepted", "rejected")))
            .group_by(Assignment.expert_id)
        ).all()
    )
    # Clients' verdicts on records the expert's accepted annotations made, beside the model's estimate.
    verdicts: dict[int, Counter[str]] = defaultdict(Counter)
    for expert_id, verdict, n in session.execute(
        select(Assignment.expert_id, RecordVerdict.verdict, func.count())
        .join(RecordVerdict, RecordVerdict.item_id == Assignment.item_id)
        .where(
            Assignment.role == "annotate",
            Assignment.status == "accepted",
            matches_any(session, Assignment.expert_id, experts),
        )
        .group_by(Assignment.expert_id, RecordVerdict.verdict)
    ):
        verdicts[int(expert_id)][verdict] += int(n)
    rows = []
    for expert_id, handle, tier, status in session.execute(
        select(Expert.id, Expert.handle, Expert.tier, Expert.status).where(matches_any(session, Expert.id, experts))
    ):
        record = evidence.get(expert_id) or Evidence()
        quality = _quality(record.quality())
        rows.append(
            {"expert": handle, "tier": tier, "status": status, "answers in batch": answers.get(expert_id, 0)}
            | quality
            | {
                "accepted by clients": verdicts[expert_id]["accepted"],
                "rejected by clients": verdicts[expert_id]["rejected"],
            }
        )
    rows.sort(key=lambda r: (r["estimate"], r["expert"]))
    return rows if limit is None else rows[:limit]
