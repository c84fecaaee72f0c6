"""What an expert does at the workbench: open a task, save a draft, submit, skip; review others' work.

Every function takes the acting expert's id and answers NotFoundError for anything that is not
theirs, so the web faces cannot show one expert another's work by a wrong id.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Integer, and_, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nightshift.platform import pseudonyms
from nightshift.platform.bounds import json_problem, text_problem
from nightshift.platform.errors import NightshiftError, NotFoundError
from nightshift.platform.keys import LIVE_KEY, presented_hash
from nightshift.platform.models import (
    ApiKey,
    Assignment,
    AssignmentDraft,
    Expert,
    ExpertLanguage,
    ExpertSkill,
    Item,
    PayoutEntry,
    Project,
    Review,
    Submission,
    as_utc,
    utcnow,
)
from nightshift.platform.sql import insert_returning_new, is_postgres
from nightshift.projects.registry import project_body
from nightshift.projects.spec import ProjectBody
from nightshift.work.submissions import answer_errors, seconds_on_task, start_assignments

REVIEWER_TIERS = ("reviewer", "adjudicator")
# Roles whose task is answering the item itself (an adjudicator answers it finally).
ANSWERING_ROLES = ("annotate", "adjudicate")
MAX_REASON = 2_000


class ConflictError(NightshiftError):
    """The task is no longer open for this action (already submitted, skipped, expired or decided)."""


class AnswerInvalid(NightshiftError):
    """An answer that breaks the label schema: field name → reason. Nothing was stored."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {why}" for name, why in errors.items()))
        self.errors = errors


@dataclass
class TaskView:
    """One assignment as its expert sees it: never another annotator's identity or answer."""

    assignment_id: int
    role: str
    status: str
    project: str
    project_name: str
    instructions: str
    expected_minutes: float
    labels: list[dict[str, Any]]
    item: dict[str, Any]
    language: str
    due_at: dt.datetime
    started_at: dt.datetime | None
    draft: dict[str, Any] | None = None
    # Review tasks only: the annotation under review and its author's pseudonym.
    subject_answer: dict[str, Any] | None = None
    annotator: str | None = None
    # Adjudication tasks only: the accepted annotations (by pseudonym) and why the item came here.
    annotations: list[dict[str, Any]] | None = None
    adjudication_reason: str | None = None


@dataclass
class Earnings:
    hourly_rate: Decimal
    paid_hours: Decimal
    time_pay: Decimal
    bonuses: Decimal
    deductions: Decimal
    total: Decimal
    unpaid_hours: Decimal
    submitted_tasks: int
    by_period: list[dict[str, Any]] = field(default_factory=list)


def annotator_pseudonym(project_id: int, expert_id: int) -> str:
    """Stable within a project, so a reviewer can tell annotators apart but never who they are (keyed)."""
    return pseudonyms.for_reviewers(project_id, expert_id)


def _owned(session: Session, expert_id: int, assignment_id: int) -> Assignment:
    assignment = session.get(Assignment, assignment_id)
    if assignment is None or assignment.expert_id != expert_id:
        raise NotFoundError(f"no assignment {assignment_id}")
    return assignment


def _open(session: Session, expert_id: int, assignment_id: int, *roles: str) -> Assignment:
    assignment = _owned(session, expert_id, assignment_id)
    if assignment.role not in roles:
        raise NotFoundError(f"no {' or '.join(roles)} assignment {assignment_id}")
    if assignment.status != "assigned":
        raise ConflictError(f"assignment {assignment_id} is {assignment.status}, no longer open")
    return assignment


def _project_of(session: Session, item_id: int) -> tuple[int, ProjectBody]:
    project_id = session.scalar(select(Item.project_id).where(Item.id == item_id))
    assert project_id is not None
    return project_id, project_body(session, project_id)


def open_tasks(session: Session, expert_id: int, role: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The expert's open tasks, soonest due first: enough to list, not the full view."""
    query = (
        select(Assignment.id, Assignment.role, Assignment.due_at, Project.slug, Item.language)
        .join(Item, Item.id == Assignment.item_id)
        .join(Project, Project.id == Item.project_id)
        .where(Assignment.open_expert_id == expert_id)
        .order_by(Assignment.due_at, Assignment.id)
        .limit(limit)
    )
    if role:
        query = query.where(Assignment.role == role)
    return [
        {"assignment_id": aid, "role": r, "due_at": as_utc(due), "project": slug, "language": lang}
        for aid, r, due, slug, lang in session.execute(query)
    ]


def next_task(session: Session, expert_id: int, role: str = "annotate") -> int | None:
    tasks = open_tasks(session, expert_id, role, limit=1)
    return tasks[0]["assignment_id"] if tasks else None


def view_task(session: Session, expert_id: int, assignment_id: int, now: dt.datetime | None = None) -> TaskView:
    """The task with its instructions and form; the first view of an open task starts its clock."""
    assignment = _owned(session, expert_id, assignment_id)
    if assignment.status == "assigned" and assignment.started_at is None:
        start_assignments(session, {assignment.id: now or utcnow()})
        session.refresh(assignment)
    item = session.get_one(Item, assignment.item_id)
    project_id, project = _project_of(session, assignment.item_id)
    draft = session.get(AssignmentDraft, assignment.id)
    view = TaskView(
        assignment_id=assignment.id,
        role=assignment.role,
        status=assignment.status,
        project=project.slug,
        project_name=project.name,
        instructions=project.instructions,
        expected_minutes=project.expected_minutes_per_item,
        labels=[label.model_dump(mode="json") for label in project.labels],
        # The client's fields only: the gold flag and any known answer stay hidden.
        item={"external_id": item.external_id, **item.payload},
        language=item.language,
        due_at=as_utc(assignment.due_at),
        started_at=as_utc(assignment.started_at) if assignment.started_at else None,
        draft=dict(draft.answer) if draft else None,
    )
    if assignment.role == "review" and assignment.subject_submission_id is not None:
        subject = session.get_one(Submission, assignment.subject_submission_id)
        author = session.scalar(select(Assignment.expert_id).where(Assignment.id == subject.assignment_id))
        assert author is not None
        view.subject_answer = dict(subject.answer)
        view.annotator = annotator_pseudonym(project_id, author)
    if assignment.role == "adjudicate":
        view.adjudication_reason = item.status_reason
        view.annotations = [
            {"annotator": annotator_pseudonym(project_id, author), "answer": dict(answer)}
            for author, answer in session.execute(
                select(Assignment.expert_id, Submission.answer)
                .join(Submission, Submission.assignment_id == Assignment.id)
                .where(
                    Assignment.item_id == item.id,
                    Assignment.role == "annotate",
                    Assignment.status == "accepted",
                )
                .order_by(Submission.id)
            ).tuples()
        ]
    return view


def _answer_object(answer: Any) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise AnswerInvalid({"answer": "must be an object of label name to value"})
    problem = json_problem(answer)
    if problem is not None:
        raise AnswerInvalid({"answer": problem})
    return answer


def _locked_open_task(session: Session, expert_id: int, assignment_id: int, *roles: str) -> int:
    """Lock the expert's open task of these roles for this transaction; its item id.

    A request that closes the task (a submission, a skip) waits for the lock and then finds the
    task as this transaction leaves it; this one, if it comes second, finds it closed: 409."""
    item_id = session.execute(
        select(Assignment.item_id)
        .where(
            Assignment.id == assignment_id,
            Assignment.expert_id == expert_id,
            Assignment.role.in_(roles),
            Assignment.status == "assigned",
        )
        .with_for_update()
    ).scalar()
    if item_id is None:
        _open(session, expert_id, assignment_id, *roles)  # 404 or 409, as the task now stands
        raise ConflictError(f"assignment {assignment_id} is no longer open")
    return item_id


def _closed_open_task(
    session: Session, expert_id: int, assignment_id: int, role: str, values: dict[str, Any]
) -> tuple[int, dt.datetime | None, int | None]:
    """Close the expert's open task in one conditional statement: (item, started_at, the
    annotation a review judges). Whoever closes it first wins; the other gets 404 or 409."""
    row = session.execute(
        update(Assignment)
        .where(
            Assignment.id == assignment_id,
            Assignment.expert_id == expert_id,
            Assignment.role == role,
            Assignment.status == "assigned",
        )
        .values(values)
        .returning(Assignment.item_id, Assignment.started_at, Assignment.subject_submission_id)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        _open(session, expert_id, assignment_id, role)
        raise ConflictError(f"assignment {assignment_id} is no longer open")
    return int(row[0]), row[1], row[2]


def save_draft(
    session: Session, expert_id: int, assignment_id: int, answer: dict[str, Any], now: dt.datetime | None = None
) -> None:
    """Keep a partial answer: only names of the schema's labels, nothing checked beyond that.

    The task is locked while the draft is written, so a draft never outlives its task: a
    submission waits and then drops it (the database's trigger), or finds the task closed first."""
    _answer_object(answer)
    item_id = _locked_open_task(session, expert_id, assignment_id, *ANSWERING_ROLES)
    _, project = _project_of(session, item_id)
    known = {label.name for label in project.labels}
    unknown = {name: "not a field of this project's label schema" for name in answer if name not in known}
    if unknown:
        raise AnswerInvalid(unknown)
    insert = postgresql.insert if is_postgres(session) else sqlite.insert
    row = {"assignment_id": assignment_id, "answer": answer, "saved_at": now or utcnow()}
    statement = insert(AssignmentDraft).values(row)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["assignment_id"],
            set_={"answer": statement.excluded.answer, "saved_at": statement.excluded.saved_at},
        )
    )


def submit_answer(
    session: Session, expert_id: int, assignment_id: int, answer: dict[str, Any], now: dt.datetime | None = None
) -> int:
    """Store the answer if it fits the label schema; returns the submission id."""
    found = session.connection().execute(_OPEN_TASK, {"assignment": assignment_id, "expert": expert_id}).first()
    if found is None:
        raise NotFoundError(f"no annotate or adjudicate assignment {assignment_id}")
    return _store_answer(session, assignment_id, tuple(found), answer, now)


def submit_answer_with_key(
    session: Session, key: str | None, assignment_id: int, answer: dict[str, Any], now: dt.datetime | None = None
) -> int | None:
    """The expert API's submission: the caller's personal token is checked in the same read as
    the task. None when the token is not an active expert's (the caller answers 401, as for any
    route); NotFoundError when the task is not theirs.

    The hot path of the API, two statements in all: this read (the key, the expert's status, the
    task, its project's spec hash), then one write (see _store_answer). Every round trip is a wait
    for the database and a wake-up of the worker, and at several hundred submissions a second
    those waits, not the queries, set the pace.
    """
    hashed = presented_hash(key)
    if hashed is None:
        return None
    found = session.connection().execute(_OPEN_TASK_BY_KEY, {"key_hash": hashed, "assignment": assignment_id}).first()
    if found is None or found.expert_status != "active":
        return None
    if found.status is None:
        raise NotFoundError(f"no annotate or adjudicate assignment {assignment_id}")
    _, *task = found
    return _store_answer(session, assignment_id, tuple(task), answer, now)


def _store_answer(
    session: Session,
    assignment_id: int,
    task: tuple[Any, ...],
    answer: dict[str, Any],
    now: dt.datetime | None,
) -> int:
    """task: the _TASK columns. Check the answer against the spec (parsed once per version) and
    store it: on PostgreSQL in one statement that closes the task, stores the answer and drops
    the draft."""
    status, started_at, project_id, spec_hash = task
    if status != "assigned":
        raise ConflictError(f"assignment {assignment_id} is {status}, no longer open")
    errors = answer_errors(_answer_object(answer), project_body(session, project_id, spec_hash))
    if errors:
        raise AnswerInvalid(errors)
    moment = now or utcnow()
    # Time on task is the server's (0 if never opened: the gate refuses it).
    worked = seconds_on_task(started_at, moment)
    values = {"assignment": assignment_id, "answer": answer, "worked": worked, "submitted_at": moment}
    if is_postgres(session):
        submission_id = session.connection().execute(_SUBMIT, values).scalar()
    else:
        submission_id = _submit_in_steps(session, values)
    if submission_id is None:
        # Closed by a concurrent request between the read and the write (the UPDATE's WHERE).
        raise ConflictError(f"assignment {assignment_id} was answered already")
    return int(submission_id)


def _submit_in_steps(session: Session, values: dict[str, Any]) -> int | None:
    """SQLite has no data-modifying CTE: close the task (its trigger drops the draft), then store the answer."""
    connection = session.connection()
    if not connection.execute(_CLOSE_ASSIGNMENT, values).rowcount:
        return None
    stored = insert_returning_new(
        session,
        Submission,
        [{"assignment_id": values["assignment"], "answer": values["answer"], "time_on_task_seconds": values["worked"]}],
        ["assignment_id"],
        ("id",),
    )
    return stored[0].id if stored else None


# Built once: building a statement costs more Python than running it (the API's hot path). Run
# on the connection, as Core: the session's ORM path costs more than the query.
# What storing an answer needs of its task: status, started_at, project_id, spec_hash.
_TASK = (Assignment.status, Assignment.started_at, Item.project_id, Project.spec_hash)
_OPEN_TASK = (
    select(*_TASK)
    .join(Item, Item.id == Assignment.item_id)
    .join(Project, Project.id == Item.project_id)
    .where(
        Assignment.id == bindparam("assignment"),
        Assignment.expert_id == bindparam("expert"),
        Assignment.role.in_(ANSWERING_ROLES),
    )
)
# The same columns found from the key instead: an unknown key is no row, a task not the key
# owner's is a row of NULLs (the outer joins), so 401 and 404 stay apart.
_OPEN_TASK_BY_KEY = (
    select(Expert.status.label("expert_status"), *_TASK)
    .select_from(ApiKey)
    .join(Expert, Expert.id == ApiKey.expert_id)
    .outerjoin(
        Assignment,
        and_(
            Assignment.id == bindparam("assignment"),
            Assignment.expert_id == ApiKey.expert_id,
            Assignment.role.in_(ANSWERING_ROLES),
        ),
    )
    .outerjoin(Item, Item.id == Assignment.item_id)
    .outerjoin(Project, Project.id == Item.project_id)
    .where(LIVE_KEY, ApiKey.kind == "expert")
)
_CLOSE_ASSIGNMENT = (
    update(Assignment)
    .where(Assignment.id == bindparam("assignment"), Assignment.status == "assigned")
    .values(status="submitted", submitted_at=bindparam("submitted_at"), worked_seconds=bindparam("worked"))
)


def _submit_statement() -> Any:
    """WITH closed AS (UPDATE assignments … WHERE status = 'assigned' RETURNING id), INSERT INTO
    submissions SELECT … FROM closed ON CONFLICT DO NOTHING RETURNING id. No row back means the
    task was closed first by someone else, and nothing was changed. The task's draft goes with it
    (the database's trigger on a task's closing, migration 0013)."""
    closed = _CLOSE_ASSIGNMENT.returning(Assignment.id).cte("closed")
    answer = bindparam("answer", type_=Submission.__table__.c.answer.type)
    return (
        postgresql.insert(Submission)
        .from_select(
            ["assignment_id", "answer", "time_on_task_seconds"],
            select(closed.c.id, answer, bindparam("worked", type_=Integer)),
        )
        .on_conflict_do_nothing(index_elements=["assignment_id"])
        .returning(Submission.id)
    )


_SUBMIT = _submit_statement()


def _reason(reason: str) -> str:
    cleaned = " ".join(reason.split())
    if not cleaned:
        raise AnswerInvalid({"reason": "required"})
    if len(cleaned) > MAX_REASON:
        raise AnswerInvalid({"reason": f"at most {MAX_REASON} characters"})
    problem = text_problem(cleaned)
    if problem is not None:
        raise AnswerInvalid({"reason": problem})
    return cleaned


def _send_back(session: Session, item_id: int, why: str) -> None:
    # Dispatch staffs 'rework' items again and never with an expert who held them before.
    session.execute(
        update(Item).where(Item.id == item_id, Item.status == "assigned").values(status="rework", status_reason=why)
    )


def skip_task(session: Session, expert_id: int, assignment_id: int, reason: str) -> None:
    """The expert passes on a task (outside their knowledge, a conflict of interest); it goes to another.
    One conditional statement: a submission that closed the task first wins (409 here)."""
    why = _reason(reason)
    item_id, _, _ = _closed_open_task(
        session, expert_id, assignment_id, "annotate", {"status": "skipped", "status_reason": why}
    )
    _send_back(session, item_id, "an expert skipped it")


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
    skills = set(session.scalars(select(ExpertSkill.skill).where(ExpertSkill.expert_id == expert_id)))
    projects = [
        pid
        for pid in session.scalars(select(Project.id))
        if (body := project_body(session, pid)).review and set(body.required_skills) <= skills
    ]
    if not projects:
        return None
    held = select(Assignment.item_id).where(Assignment.expert_id == expert_id)
    reviewed = select(Assignment.subject_submission_id).where(Assignment.subject_submission_id.is_not(None))
    candidates = session.execute(
        select(Submission.id, Assignment.item_id)
        .join(Assignment, Assignment.id == Submission.assignment_id)
        .join(Item, Item.id == Assignment.item_id)
        .where(
            Item.project_id.in_(projects),
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
    skills = set(session.scalars(select(ExpertSkill.skill).where(ExpertSkill.expert_id == expert_id)))
    languages = set(session.scalars(select(ExpertLanguage.language).where(ExpertLanguage.expert_id == expert_id)))
    projects = [
        pid for pid in session.scalars(select(Project.id)) if set(project_body(session, pid).required_skills) <= skills
    ]
    if not projects or not languages:
        return None
    held = select(Assignment.item_id).where(Assignment.expert_id == expert_id)
    live = select(Assignment.live_adjudication_item_id).where(Assignment.live_adjudication_item_id.is_not(None))
    candidates = session.scalars(
        select(Item.id)
        .where(
            Item.status == "adjudication",
            Item.project_id.in_(projects),
            Item.language.in_(languages),
            Item.id.not_in(held),
            Item.id.not_in(live),
        )
        .order_by(Item.id)
        .limit(20)
    ).all()
    moment = now or utcnow()
    for item_id in candidates:
        try:
            with session.begin_nested():
                session.add(
                    Assignment(
                        item_id=item_id,
                        expert_id=expert_id,
                        role="adjudicate",
                        status="assigned",
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
    review = _owned(session, expert_id, assignment_id)
    if review.role != "review":
        raise NotFoundError(f"no review assignment {assignment_id}")
    why: str | None = None
    if decision == "reject":
        why = _reason(reason or "")
    elif decision == "correct":
        checked = _answer_object(corrected_answer)
        _, project = _project_of(session, review.item_id)
        errors = answer_errors(checked, project)
        if errors:
            raise AnswerInvalid(errors)
    if decision != "reject" and reason:
        why = _reason(reason)
    moment = now or utcnow()
    _, started_at, subject_id = _closed_open_task(
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
        _send_back(session, still_open.item_id, "an annotation was rejected in review")


def earnings(session: Session, expert_id: int) -> Earnings:
    """Pay to date from the ledger, and the hours worked that the next pay run will bill."""
    rate = session.scalar(select(Expert.hourly_rate).where(Expert.id == expert_id))
    assert rate is not None
    totals = {
        kind: (Decimal(minutes or 0), Decimal(amount or 0))
        for kind, minutes, amount in session.execute(
            select(PayoutEntry.kind, func.sum(PayoutEntry.minutes), func.sum(PayoutEntry.amount))
            .where(PayoutEntry.expert_id == expert_id)
            .group_by(PayoutEntry.kind)
        ).tuples()
    }
    by_period = [
        {"period": period, "amount": Decimal(amount)}
        for period, amount in session.execute(
            select(PayoutEntry.period, func.sum(PayoutEntry.amount))
            .where(PayoutEntry.expert_id == expert_id)
            .group_by(PayoutEntry.period)
            .order_by(PayoutEntry.period.desc())
        ).tuples()
    ]
    paid = select(PayoutEntry.assignment_id).where(PayoutEntry.kind == "time", PayoutEntry.assignment_id.is_not(None))
    mine = and_(Assignment.expert_id == expert_id, Assignment.submitted_at.is_not(None))
    submitted = session.scalar(select(func.count()).where(mine))
    unpaid_seconds = session.scalar(
        select(func.coalesce(func.sum(Assignment.worked_seconds), 0)).where(mine, Assignment.id.not_in(paid))
    )
    zero = (Decimal(0), Decimal(0))
    time_minutes, time_amount = totals.get("time", zero)
    bonuses = totals.get("bonus", zero)[1]
    deductions = totals.get("deduction", zero)[1] + totals.get("correction", zero)[1]
    return Earnings(
        hourly_rate=Decimal(rate),
        paid_hours=(time_minutes / 60).quantize(Decimal("0.01")),
        time_pay=time_amount,
        bonuses=bonuses,
        deductions=deductions,
        total=time_amount + bonuses + deductions,
        unpaid_hours=(Decimal(int(unpaid_seconds or 0)) / 3600).quantize(Decimal("0.01")),
        submitted_tasks=int(submitted or 0),
        by_period=by_period,
    )
