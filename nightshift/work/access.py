"""What every workbench action shares: its errors, the acting expert's own open task (locked
or closed in one conditional statement), and the checks on what an expert sends.

Every function takes the acting expert's id and answers NotFoundError for anything that is not
theirs, so the web faces cannot show one expert another's work by a wrong id.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from nightshift.platform import pseudonyms
from nightshift.platform.bounds import json_problem, text_problem
from nightshift.platform.errors import NightshiftError, NotFoundError
from nightshift.platform.models import Assignment, Item
from nightshift.projects.registry import item_body
from nightshift.projects.spec import ProjectBody

MAX_REASON = 2_000


class ConflictError(NightshiftError):
    """The task is no longer open for this action (already submitted, skipped, expired or decided)."""


class AnswerInvalid(NightshiftError):
    """An answer that breaks the label schema: field name → reason. Nothing was stored."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {why}" for name, why in errors.items()))
        self.errors = errors


def annotator_pseudonym(project_id: int, expert_id: int) -> str:
    """Stable within a project, so a reviewer can tell annotators apart but never who they are (keyed)."""
    return pseudonyms.for_reviewers(project_id, expert_id)


def owned(session: Session, expert_id: int, assignment_id: int) -> Assignment:
    assignment = session.get(Assignment, assignment_id)
    if assignment is None or assignment.expert_id != expert_id:
        raise NotFoundError(f"no assignment {assignment_id}")
    return assignment


def _open(session: Session, expert_id: int, assignment_id: int, *roles: str) -> Assignment:
    assignment = owned(session, expert_id, assignment_id)
    if assignment.role not in roles:
        raise NotFoundError(f"no {' or '.join(roles)} assignment {assignment_id}")
    if assignment.status != "assigned":
        raise ConflictError(f"assignment {assignment_id} is {assignment.status}, no longer open")
    return assignment


def project_of(session: Session, item_id: int) -> tuple[int, ProjectBody]:
    """The item's project and the spec its work is done under (its batch's version)."""
    return item_body(session, item_id)


def answer_object(answer: Any) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise AnswerInvalid({"answer": "must be an object of label name to value"})
    problem = json_problem(answer)
    if problem is not None:
        raise AnswerInvalid({"answer": problem})
    return answer


def locked_open_task(session: Session, expert_id: int, assignment_id: int, *roles: str) -> int:
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


def closed_open_task(
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


def clean_reason(reason: str) -> str:
    cleaned = " ".join(reason.split())
    if not cleaned:
        raise AnswerInvalid({"reason": "required"})
    if len(cleaned) > MAX_REASON:
        raise AnswerInvalid({"reason": f"at most {MAX_REASON} characters"})
    problem = text_problem(cleaned)
    if problem is not None:
        raise AnswerInvalid({"reason": problem})
    return cleaned


def send_back(session: Session, item_id: int, why: str) -> None:
    # Dispatch staffs 'rework' items again and never with an expert who held them before.
    session.execute(
        update(Item).where(Item.id == item_id, Item.status == "assigned").values(status="rework", status_reason=why)
    )
