"""Review at the workbench: reviewers and adjudicators claim others' work, and decide reviews."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from sqlalchemy import exists, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from nightshift.experts.registry import holds, skill_levels
from nightshift.platform.errors import NotFoundError
from nightshift.platform.models import (
    Assignment,
    Expert,
    ExpertLanguage,
    Item,
    Project,
    Review,
    Submission,
    utcnow,
)
from nightshift.platform.sql import is_postgres
from nightshift.projects.registry import project_body
from nightshift.review.policy import REVIEWER_TIERS, rework_spent, spent_rounds, worth_reviewing
from nightshift.review.settle import adjudicator_available, rejected_by_client
from nightshift.work.access import (
    AnswerInvalid,
    ConflictError,
    answer_object,
    clean_reason,
    closed_open_task,
    owned,
    project_of,
    send_back,
)
from nightshift.work.submissions import TaskContext, answer_errors, cites_runs, completed_answer, seconds_on_task
from nightshift.work.tasks import next_task


def _lock_expert(session: Session, expert_id: int) -> None:
    """Claims by one expert take turns: two at once (two tabs) would otherwise both find nothing
    open and both take a new task."""
    session.execute(select(Expert.id).where(Expert.id == expert_id).with_for_update())


def _insert_if_free(session: Session, row: dict[str, Any]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING on whichever unique key the row meets: whether it went in."""
    insert = postgresql.insert if is_postgres(session) else sqlite.insert
    inserted = session.execute(insert(Assignment).values(row).on_conflict_do_nothing().returning(Assignment.id))
    return inserted.first() is not None


def claim_review(session: Session, expert_id: int, now: dt.datetime | None = None, due_hours: float = 24) -> int | None:
    """The reviewer's open review task, or a new one on the oldest annotation awaiting review.

    Only reviewers and adjudicators review, never their own item's annotations, and only in
    projects whose spec asks for review and whose required skills they have. The unique key on the
    annotation under review makes two reviewers claiming at once get different annotations.
    """
    _lock_expert(session, expert_id)
    mine = next_task(session, expert_id, "review")
    if mine is not None:
        return mine
    tier = session.scalar(select(Expert.tier).where(Expert.id == expert_id, Expert.status == "active"))
    if tier not in REVIEWER_TIERS:
        return None
    levels = skill_levels(session, expert_id)
    shares = {
        pid: body.review_share
        for pid in session.scalars(select(Project.id))
        if (body := project_body(session, pid)).review and holds(levels, body.required_skills, body.skill_level)
    }
    if not shares:
        return None
    held = select(Assignment.item_id).where(Assignment.expert_id == expert_id)
    reviewed = select(Assignment.subject_submission_id).where(Assignment.subject_submission_id.is_not(None))
    author = aliased(Expert)
    candidates = session.execute(
        select(Submission.id, Assignment.item_id)
        .join(Assignment, Assignment.id == Submission.assignment_id)
        .join(Item, Item.id == Assignment.item_id)
        .join(author, author.id == Assignment.expert_id)
        .where(
            or_(*(worth_reviewing(pid, share, author) for pid, share in shares.items())),
            Assignment.role == "annotate",
            Assignment.status == "submitted",
            Assignment.item_id.not_in(held),
            Submission.id.not_in(reviewed),
        )
        .order_by(Submission.id)
        .limit(20)
    ).all()
    moment = now or utcnow()
    for submission_id, item_id in candidates:
        row = {
            "item_id": item_id,
            "expert_id": expert_id,
            "role": "review",
            "status": "assigned",
            "due_at": moment + dt.timedelta(hours=due_hours),
            "subject_submission_id": submission_id,
        }
        # Any unique key may stop it (another reviewer took this annotation a moment ago): try the next.
        if _insert_if_free(session, row):
            return next_task(session, expert_id, "review")
    return None


def within_reach(session: Session, expert_id: int) -> tuple[list[int], list[str]]:
    """The projects whose skills the expert holds at the project's level, and the languages they
    work in: what they could adjudicate (an adjudication, an appeal)."""
    levels = skill_levels(session, expert_id)
    languages = list(session.scalars(select(ExpertLanguage.language).where(ExpertLanguage.expert_id == expert_id)))
    projects = [
        pid
        for pid in session.scalars(select(Project.id))
        if holds(levels, (body := project_body(session, pid)).required_skills, body.skill_level)
    ]
    return projects, languages


def claim_adjudication(
    session: Session, expert_id: int, now: dt.datetime | None = None, due_hours: float = 24
) -> int | None:
    """The adjudicator's open adjudication, or a new one on the oldest item waiting for one.

    Only adjudicators, never on an item they worked on, only with the project's required skills
    and one of its languages. The partial unique index on live adjudications makes two
    adjudicators claiming at once get different items.
    """
    _lock_expert(session, expert_id)
    mine = next_task(session, expert_id, "adjudicate")
    if mine is not None:
        return mine
    tier = session.scalar(select(Expert.tier).where(Expert.id == expert_id, Expert.status == "active"))
    if tier != "adjudicator":
        return None
    projects, languages = within_reach(session, expert_id)
    if not projects or not languages:
        return None
    # NOT EXISTS (anti-joins) rather than NOT IN (subquery), as in review.settle: once the planner
    # thinks a subquery will not fit in work_mem, NOT IN scans it again for every item.
    held = exists().where(Assignment.item_id == Item.id, Assignment.expert_id == expert_id)
    live = exists().where(Assignment.live_adjudication_item_id == Item.id)
    candidates = session.scalars(
        select(Item.id)
        .where(
            Item.status == "adjudication",
            Item.project_id.in_(projects),
            Item.language.in_(languages),
            ~held,
            ~live,
        )
        .order_by(Item.id)
        .limit(20)
    ).all()
    moment = now or utcnow()
    # Read before any savepoint: on SQLite a read inside one, then a write, fails at once if
    # another connection wrote meanwhile (its snapshot is stale), where a write first would wait.
    unbilled = rejected_by_client(session, list(candidates))
    for item_id in candidates:
        try:
            with session.begin_nested():
                session.add(
                    Assignment(
                        item_id=item_id,
                        expert_id=expert_id,
                        role="adjudicate",
                        status="assigned",
                        # The client does not pay for settling a record it rejected.
                        billable=item_id not in unbilled,
                        due_at=moment + dt.timedelta(hours=due_hours),
                    )
                )
        except IntegrityError:
            continue  # another adjudicator took it a moment ago
        return next_task(session, expert_id, "adjudicate")
    return None


def decide_review(
    session: Session,
    expert_id: int,
    assignment_id: int,
    decision: Literal["approve", "reject", "correct"],
    reason: str | None = None,
    corrected_answer: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> None:
    """Approve (the gate still checks it), reject with a reason (the item goes to another expert),
    or correct (the corrected answer stands in for the annotation when the item is aggregated).

    The review closes in one conditional statement, and a rejection rejects the annotation only if
    it still awaits a verdict: the second of two decisions, or one after the gate judged the
    annotation, is a 409 and changes nothing."""
    review = owned(session, expert_id, assignment_id)
    if review.role != "review":
        raise NotFoundError(f"no review assignment {assignment_id}")
    why: str | None = None
    if decision == "reject":
        why = clean_reason(reason or "")
    elif decision == "correct":
        checked = answer_object(corrected_answer)
        _, project = project_of(session, review.item_id)
        annotated = session.scalar(
            select(Submission.assignment_id).where(Submission.id == review.subject_submission_id)
        )
        context = TaskContext(session, project, review.item_id, annotated)
        errors = answer_errors(checked, project, context)
        if errors:
            raise AnswerInvalid(errors)
        if cites_runs(project):
            corrected_answer = completed_answer(checked, project, context)
    if decision != "reject" and reason:
        why = clean_reason(reason)
    moment = now or utcnow()
    _, started_at, subject_id = closed_open_task(
        session, expert_id, assignment_id, "review", {"status": "submitted", "submitted_at": moment}
    )
    assert subject_id is not None
    annotation_id = session.scalar(select(Submission.assignment_id).where(Submission.id == subject_id))
    still_open = session.execute(
        select(Assignment.status, Assignment.item_id).where(Assignment.id == annotation_id).with_for_update()
    ).one()
    if still_open.status != "submitted":
        raise ConflictError(f"the annotation under review is already {still_open.status}")
    session.execute(
        update(Assignment)
        .where(Assignment.id == assignment_id)
        .values(worked_seconds=seconds_on_task(started_at, moment))
        .execution_options(synchronize_session=False)
    )
    session.add(
        Review(
            submission_id=subject_id,
            reviewer_assignment_id=assignment_id,
            decision=decision,
            reason=why,
            corrected_answer=corrected_answer if decision == "correct" else None,
        )
    )
    if decision == "reject":
        session.execute(
            update(Assignment)
            .where(Assignment.id == annotation_id, Assignment.status == "submitted")
            .values(status="rejected", status_reason=f"rejected in review: {why}")
            .execution_options(synchronize_session=False)
        )
        _, project = project_of(session, still_open.item_id)
        if rework_spent(session, [still_open.item_id], project.rework_rounds) and adjudicator_available(
            session, [still_open.item_id], project.required_skills, project.skill_level
        ):
            session.execute(
                update(Item)
                .where(Item.id == still_open.item_id, Item.status == "assigned")
                .values(status="adjudication", status_reason=f"to adjudication: {spent_rounds(project.rework_rounds)}")
            )
        else:
            send_back(session, still_open.item_id, "an annotation was rejected in review")
