"""What an expert does with a task at the workbench: save a draft, submit an answer, skip it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from sqlalchemy import Integer, and_, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from nightshift.platform.driver import DriverStatement
from nightshift.platform.errors import NotFoundError
from nightshift.platform.keys import LIVE_KEY, presented_hash
from nightshift.platform.models import (
    ApiKey,
    Assignment,
    AssignmentDraft,
    Batch,
    Expert,
    Item,
    Project,
    ProjectSpecVersion,
    Submission,
    utcnow,
)
from nightshift.platform.sql import insert_returning_new, is_postgres
from nightshift.projects.registry import version_body
from nightshift.work.access import (
    AnswerInvalid,
    ConflictError,
    answer_object,
    clean_reason,
    closed_open_task,
    locked_open_task,
    project_of,
    send_back,
)
from nightshift.work.submissions import TaskContext, answer_errors, cites_runs, completed_answer, seconds_on_task

# Roles whose task is answering the item itself (an adjudicator answers it finally).
ANSWERING_ROLES = ("annotate", "adjudicate")


def save_draft(
    session: Session, expert_id: int, assignment_id: int, answer: dict[str, Any], now: dt.datetime | None = None
) -> None:
    """Keep a partial answer: only names of the schema's labels, nothing checked beyond that.

    The task is locked while the draft is written, so a draft never outlives its task: a
    submission waits and then drops it (the database's trigger), or finds the task closed first."""
    answer_object(answer)
    item_id = locked_open_task(session, expert_id, assignment_id, *ANSWERING_ROLES)
    _, project = project_of(session, item_id)
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
    session: Session,
    key: str | None,
    assignment_id: int,
    answer: dict[str, Any],
    now: dt.datetime | None = None,
    driver: psycopg.Connection[Any] | None = None,
) -> int | None:
    """The expert API's submission: the caller's personal token is checked in the same read as
    the task. None when the token is not an active expert's (the caller answers 401, as for any
    route); NotFoundError when the task is not theirs.

    The hot path of the API, two statements in all: this read (the key, the expert's status, the
    task, its project's spec hash), then one write (see _store_answer). Every round trip is a wait
    for the database and a wake-up of the worker, and at several hundred submissions a second
    those waits, not the queries, set the pace.

    driver: a PostgreSQL connection in autocommit mode to run both on, past SQLAlchemy (see
    platform.driver); the session then serves only the reads a spec not yet parsed or a field
    that looks into the item needs.
    """
    hashed = presented_hash(key)
    if hashed is None:
        return None
    values = {"key_hash": hashed, "assignment": assignment_id}
    if driver is None:
        found = session.connection().execute(_OPEN_TASK_BY_KEY, values).first()
    else:
        found = _OPEN_TASK_BY_KEY_ON_DRIVER.run(driver, values).fetchone()
    if found is None:
        return None
    expert_status, *task = found
    if expert_status != "active":
        return None
    if task[0] is None:
        raise NotFoundError(f"no annotate or adjudicate assignment {assignment_id}")
    return _store_answer(session, assignment_id, tuple(task), answer, now, driver)


def _store_answer(
    session: Session,
    assignment_id: int,
    task: tuple[Any, ...],
    answer: dict[str, Any],
    now: dt.datetime | None,
    driver: psycopg.Connection[Any] | None = None,
) -> int:
    """task: the _TASK columns. Check the answer against the spec (parsed once per version) and
    store it: on PostgreSQL in one statement that closes the task, stores the answer and drops
    the draft."""
    status, started_at, item_id, project_id, version, version_hash, current_hash = task
    if status != "assigned":
        raise ConflictError(f"assignment {assignment_id} is {status}, no longer open")
    project = version_body(session, project_id, version, version_hash, current_hash)
    # What the answer may point into; the item is read only if a field asks.
    context = TaskContext(session, project, int(item_id), assignment_id)
    errors = answer_errors(answer_object(answer), project, context)
    if errors:
        raise AnswerInvalid(errors)
    if cites_runs(project):
        answer = completed_answer(answer, project, context)
    moment = now or utcnow()
    # Time on task is the server's (0 if never opened: the gate refuses it).
    worked = seconds_on_task(started_at, moment)
    values = {"assignment": assignment_id, "answer": answer, "worked": worked, "submitted_at": moment}
    if driver is not None:
        stored = _SUBMIT_ON_DRIVER.run(driver, values).fetchone()
        submission_id = stored[0] if stored else None
    elif is_postgres(session):
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
# What storing an answer needs of its task: status, started_at, its item, project_id, spec_hash.
# The spec is the item's batch's version (work in flight keeps it when the project's changes).
_TASK = (
    Assignment.status,
    Assignment.started_at,
    Assignment.item_id,
    Item.project_id,
    Batch.spec_version,
    ProjectSpecVersion.spec_hash,
    Project.spec_hash.label("current_hash"),
)
_VERSION_OF_BATCH = and_(
    ProjectSpecVersion.project_id == Batch.project_id, ProjectSpecVersion.version == Batch.spec_version
)
_OPEN_TASK = (
    select(*_TASK)
    .join(Item, Item.id == Assignment.item_id)
    .join(Batch, Batch.id == Item.batch_id)
    .join(ProjectSpecVersion, _VERSION_OF_BATCH)
    .join(Project, Project.id == Batch.project_id)
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
    .outerjoin(Batch, Batch.id == Item.batch_id)
    .outerjoin(ProjectSpecVersion, _VERSION_OF_BATCH)
    .outerjoin(Project, Project.id == Batch.project_id)
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
_OPEN_TASK_BY_KEY_ON_DRIVER = DriverStatement(_OPEN_TASK_BY_KEY)
_SUBMIT_ON_DRIVER = DriverStatement(_SUBMIT)


def skip_task(session: Session, expert_id: int, assignment_id: int, reason: str) -> None:
    """The expert passes on a task (outside their knowledge, a conflict of interest); it goes to another.
    One conditional statement: a submission that closed the task first wins (409 here)."""
    why = clean_reason(reason)
    item_id, _, _ = closed_open_task(
        session, expert_id, assignment_id, "annotate", {"status": "skipped", "status_reason": why}
    )
    send_back(session, item_id, "an expert skipped it")
