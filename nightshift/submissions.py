"""Submissions: an expert's answer to an assignment, checked against the project's label schema."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from nightshift.models import Assignment, Submission
from nightshift.spec import FreeText, MultiChoice, OrdinalScale, PairwisePreference, ProjectBody, SingleChoice
from nightshift.sql import insert_ignoring_conflicts


def answer_errors(answer: dict[str, Any], project: ProjectBody) -> dict[str, str]:
    """Field name → reason, for every label the answer gets wrong. Empty means valid."""
    errors: dict[str, str] = {}
    known = {label.name for label in project.labels}
    for name in answer:
        if name not in known:
            errors[name] = "not a field of this project's label schema"
    for label in project.labels:
        value = answer.get(label.name)
        if value is None:
            if label.required:
                errors[label.name] = "required"
            continue
        if isinstance(label, OrdinalScale):
            if not isinstance(value, int) or isinstance(value, bool) or not label.min <= value <= label.max:
                errors[label.name] = f"must be a whole number from {label.min} to {label.max}"
        elif isinstance(label, SingleChoice | PairwisePreference):
            if value not in label.options:
                errors[label.name] = f"must be one of {label.options}"
        elif isinstance(label, MultiChoice):
            if not isinstance(value, list) or any(v not in label.options for v in value):
                errors[label.name] = f"must be a list of options from {label.options}"
            elif len(set(value)) != len(value):
                errors[label.name] = "lists an option twice"
        elif isinstance(label, FreeText):
            if not isinstance(value, str):
                errors[label.name] = "must be text"
            elif not label.min_length <= len(value.strip()) <= label.max_length:
                errors[label.name] = f"must be {label.min_length} to {label.max_length} characters"
    return errors


@dataclass(frozen=True)
class NewSubmission:
    assignment_id: int
    answer: dict[str, Any]
    time_on_task_seconds: int


def record_submissions(session: Session, submissions: list[NewSubmission]) -> int:
    """Store answers for open assignments and mark them submitted; a repeat is ignored."""
    if not submissions:
        return 0
    open_ids = set(
        session.scalars(
            select(Assignment.id).where(
                Assignment.id.in_([s.assignment_id for s in submissions]), Assignment.status == "assigned"
            )
        )
    )
    rows = [
        {"assignment_id": s.assignment_id, "answer": s.answer, "time_on_task_seconds": s.time_on_task_seconds}
        for s in submissions
        if s.assignment_id in open_ids
    ]
    stored = insert_ignoring_conflicts(session, Submission, rows, ["assignment_id"])
    session.execute(update(Assignment).where(Assignment.id.in_(open_ids)).values(status="submitted"))
    return stored
