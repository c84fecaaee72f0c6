"""Appeals: an expert disputes, once, a reviewer's rejection or correction of their annotation or
the gold answer it was judged by; an adjudicator who is neither the author nor that reviewer
decides.

An upheld appeal counts the annotation as right in the expert's quality (review.reliability) and
the overturned review as wrong in the reviewer's; the pay run returns a deduction it caused, or
never takes one (payouts.ledger). On a gold item the adjudicator may also correct the gold answer
to the appealed one; a gold item with GOLD_FLAG_AT upheld appeals is flagged to ops.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session, aliased

from nightshift.platform.audit import record_transition
from nightshift.platform.errors import NightshiftError, NotFoundError
from nightshift.platform.models import (
    Appeal,
    Assignment,
    Expert,
    GoldAnswer,
    Item,
    Project,
    Review,
    Submission,
    utcnow,
)
from nightshift.platform.sql import insert_ignoring_conflicts
from nightshift.projects.registry import project_spec
from nightshift.review.decisions import within_reach
from nightshift.review.reliability import matcher, update_reliability
from nightshift.work.access import AnswerInvalid, ConflictError, clean_reason

GOLD_FLAG_AT = 2


class AppealRefused(NightshiftError):
    """Nothing on this annotation can be appealed, or this expert may not decide this appeal."""


def _grounds(session: Session, submission_id: int) -> tuple[str, int | None] | None:
    """What an annotation may be appealed against: the latest review that rejected or corrected
    it, else its gold item's answer when it missed it; None when neither."""
    review_id = session.scalar(
        select(Review.id)
        .where(Review.submission_id == submission_id, Review.decision.in_(("reject", "correct")))
        .order_by(Review.id.desc())
        .limit(1)
    )
    if review_id is not None:
        return "review", review_id
    row = session.execute(
        select(Item.project_id, Submission.answer, GoldAnswer.answer)
        .join(Assignment, Assignment.id == Submission.assignment_id)
        .join(Item, Item.id == Assignment.item_id)
        .join(GoldAnswer, GoldAnswer.item_id == Item.id)
        .where(Submission.id == submission_id)
    ).first()
    if row is None:
        return None
    project_id, answer, gold = row
    agrees = matcher(project_spec(session, project_id).project)
    return None if agrees(answer, gold) else ("gold", None)


def file_appeal(session: Session, expert_id: int, submission_id: int, reason: str) -> int:
    """The expert's appeal against what judged their annotation; once per annotation."""
    owner = session.scalar(
        select(Assignment.expert_id)
        .join(Submission, Submission.assignment_id == Assignment.id)
        .where(Submission.id == submission_id)
    )
    if owner != expert_id:
        raise NotFoundError(f"no annotation {submission_id} of yours")
    why = clean_reason(reason)
    grounds = _grounds(session, submission_id)
    if grounds is None:
        raise AppealRefused("nothing to appeal: no reviewer rejected or corrected it, and it matches any gold answer")
    kind, review_id = grounds
    row = {
        "submission_id": submission_id,
        "expert_id": expert_id,
        "kind": kind,
        "review_id": review_id,
        "reason": why,
        "status": "open",
    }
    if not insert_ignoring_conflicts(session, Appeal, [row], ["submission_id"]):
        raise ConflictError("this annotation was appealed already: an appeal is heard once")
    appeal_id = session.scalar(select(Appeal.id).where(Appeal.submission_id == submission_id))
    assert appeal_id is not None
    record_transition(session, "appeal", appeal_id, None, "open", f"expert:{expert_id}")
    return appeal_id


def _may_decide(session: Session, adjudicator_id: int) -> Any:
    """On an Appeal row: this adjudicator could adjudicate its item (the project's skills at its
    level, the item's language) and has no assignment of their own on it: not its author, not its
    reviewer, not an earlier adjudicator or a co-annotator."""
    subject = aliased(Assignment)
    anyone = aliased(Assignment)
    projects, languages = within_reach(session, adjudicator_id)
    return exists(
        select(1)
        .select_from(Submission)
        .join(subject, subject.id == Submission.assignment_id)
        .join(Item, Item.id == subject.item_id)
        .where(
            Submission.id == Appeal.submission_id,
            Item.project_id.in_(projects),
            Item.language.in_(languages),
            ~exists().where(anyone.item_id == subject.item_id, anyone.expert_id == adjudicator_id),
        )
    )


@dataclass
class AppealView:
    appeal_id: int
    kind: str
    status: str
    project: str
    instructions: str
    item: dict[str, Any]
    answer: dict[str, Any]
    reason: str
    # What the appeal disputes: the reviewer's decision, comment and correction, or the gold answer.
    decision: str | None
    comment: str | None
    corrected: dict[str, Any] | None
    gold: dict[str, Any] | None
    created_at: dt.datetime


def open_appeals(session: Session, adjudicator_id: int, limit: int = 50) -> list[AppealView]:
    """Open appeals this adjudicator may decide, oldest first; nobody named."""
    if not _is_adjudicator(session, adjudicator_id):
        return []
    ids = session.scalars(
        select(Appeal.id)
        .where(Appeal.status == "open", _may_decide(session, adjudicator_id))
        .order_by(Appeal.created_at, Appeal.id)
        .limit(limit)
    ).all()
    return [appeal_view(session, appeal_id) for appeal_id in ids]


def appeal_view(session: Session, appeal_id: int) -> AppealView:
    row = session.execute(
        select(Appeal, Submission.answer, Item.payload, Item.id, Project.name, Project.id)
        .join(Submission, Submission.id == Appeal.submission_id)
        .join(Assignment, Assignment.id == Submission.assignment_id)
        .join(Item, Item.id == Assignment.item_id)
        .join(Project, Project.id == Item.project_id)
        .where(Appeal.id == appeal_id)
    ).first()
    if row is None:
        raise NotFoundError(f"no appeal {appeal_id}")
    appeal, answer, payload, item_id, project_name, project_id = row
    review = session.get(Review, appeal.review_id) if appeal.review_id else None
    gold = session.scalar(select(GoldAnswer.answer).where(GoldAnswer.item_id == item_id))
    return AppealView(
        appeal.id,
        appeal.kind,
        appeal.status,
        project_name,
        project_spec(session, project_id).project.instructions,
        {k: v for k, v in (payload or {}).items() if k != "external_id"},
        answer,
        appeal.reason,
        review.decision if review else None,
        review.reason if review else None,
        review.corrected_answer if review else None,
        gold if appeal.kind == "gold" else None,
        appeal.created_at,
    )


def _is_adjudicator(session: Session, expert_id: int) -> bool:
    tier = session.scalar(select(Expert.tier).where(Expert.id == expert_id, Expert.status == "active"))
    return tier == "adjudicator"


@dataclass
class Decided:
    appeal_id: int
    status: str
    appellant: int
    gold_corrected: bool
    # A gold item whose answer has now been overturned GOLD_FLAG_AT times or more: ops should look.
    flagged_gold_item: int | None = None


def decide_appeal(
    session: Session,
    adjudicator_id: int,
    appeal_id: int,
    uphold: bool,
    note: str,
    correct_gold: bool = False,
    now: dt.datetime | None = None,
) -> Decided:
    """Uphold or reject, with a note the appellant reads; closed in one conditional statement, so
    a second decision is a conflict. Upholding recomputes the appellant's and the reviewer's quality."""
    if not _is_adjudicator(session, adjudicator_id):
        raise AppealRefused("only an active adjudicator decides appeals")
    appeal = session.get(Appeal, appeal_id)
    if appeal is None:
        raise NotFoundError(f"no appeal {appeal_id}")
    why = clean_reason(note)
    if correct_gold and not (uphold and appeal.kind == "gold"):
        raise AnswerInvalid({"correct_gold": "only an upheld appeal against a gold answer corrects it"})
    status = "upheld" if uphold else "rejected"
    closed = session.execute(
        update(Appeal)
        .where(Appeal.id == appeal_id, Appeal.status == "open", _may_decide(session, adjudicator_id))
        .values(
            status=status,
            decided_by=adjudicator_id,
            decision_note=why,
            gold_corrected=correct_gold,
            decided_at=now or utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    if closed.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(appeal)
        if appeal.status != "open":
            raise ConflictError(f"appeal {appeal_id} is {appeal.status} already")
        raise AppealRefused(
            "you may not decide this appeal: you worked on its item (it is yours, or it disputes your own "
            "review), or you lack its project's skills or its language"
        )
    record_transition(session, "appeal", appeal_id, "open", status, f"expert:{adjudicator_id}")
    session.refresh(appeal)
    item_id, answer = session.execute(
        select(Assignment.item_id, Submission.answer)
        .join(Submission, Submission.assignment_id == Assignment.id)
        .where(Submission.id == appeal.submission_id)
    ).one()
    if correct_gold:
        gold = session.scalar(select(GoldAnswer.answer).where(GoldAnswer.item_id == item_id)) or {}
        corrected = {name: answer[name] for name in gold if name in answer}
        session.execute(update(GoldAnswer).where(GoldAnswer.item_id == item_id).values(answer=corrected))
    decided = Decided(appeal_id, status, appeal.expert_id, correct_gold)
    if uphold:
        affected = [appeal.expert_id]
        if appeal.review_id is not None:
            reviewer = session.scalar(
                select(Assignment.expert_id)
                .join(Review, Review.reviewer_assignment_id == Assignment.id)
                .where(Review.id == appeal.review_id)
            )
            if reviewer is not None:
                affected.append(reviewer)
        update_reliability(session, affected)
        if appeal.kind == "gold" and upheld_on_gold(session, item_id) >= GOLD_FLAG_AT:
            decided.flagged_gold_item = item_id
    return decided


def upheld_on_gold(session: Session, item_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Appeal)
            .join(Submission, Submission.id == Appeal.submission_id)
            .join(Assignment, Assignment.id == Submission.assignment_id)
            .where(Assignment.item_id == item_id, Appeal.kind == "gold", Appeal.status == "upheld")
        )
        or 0
    )


def flagged_gold(session: Session) -> list[dict[str, Any]]:
    """Gold items whose answer was overturned on appeal GOLD_FLAG_AT times or more."""
    rows = session.execute(
        select(Assignment.item_id, Item.external_id, Project.slug, func.count())
        .select_from(Appeal)
        .join(Submission, Submission.id == Appeal.submission_id)
        .join(Assignment, Assignment.id == Submission.assignment_id)
        .join(Item, Item.id == Assignment.item_id)
        .join(Project, Project.id == Item.project_id)
        .where(Appeal.kind == "gold", Appeal.status == "upheld")
        .group_by(Assignment.item_id, Item.external_id, Project.slug)
        .having(func.count() >= GOLD_FLAG_AT)
        .order_by(Assignment.item_id)
    )
    return [
        {"item_id": item_id, "external_id": external_id, "project": project, "upheld_appeals": int(n)}
        for item_id, external_id, project, n in rows
    ]


def upheld_submissions(session: Session, submission_ids: list[int]) -> set[int]:
    """Those of these annotations whose appeal was upheld."""
    if not submission_ids:
        return set()
    return set(
        session.scalars(
            select(Appeal.submission_id).where(Appeal.submission_id.in_(submission_ids), Appeal.status == "upheld")
        )
    )


def appeals_table(session: Session, status: str | None = None) -> list[dict[str, Any]]:
    """Appeals for ops: kind, status, age, decision; experts by id only."""
    query = select(Appeal).order_by(Appeal.id)
    if status is not None:
        query = query.where(Appeal.status == status)
    return [
        {
            "appeal": a.id,
            "kind": a.kind,
            "status": a.status,
            "expert_id": a.expert_id,
            "decided_by": a.decided_by,
            "gold_corrected": a.gold_corrected,
            "created_at": a.created_at.isoformat() if a.created_at else None,
        }
        for a in session.scalars(query)
    ]
