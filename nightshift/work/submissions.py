"""Submissions: an expert's answer to an assignment, checked against the project's label schema."""

from __future__ import annotations

import datetime as dt
from collections import ChainMap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from nightshift.fields import AnswerContext, field_type
from nightshift.generate.responses import lengths_in
from nightshift.platform.models import Assignment, Submission, as_utc, utcnow
from nightshift.platform.sql import insert_ignoring_conflicts, matches_any, plain_rows, update_grouped
from nightshift.projects.spec import Label, ProjectBody
from nightshift.work.model_runs import conversation


def answer_errors(
    answer: dict[str, Any],
    project: ProjectBody,
    context: AnswerContext | None = None,
) -> dict[str, str]:
    """Field name → reason, for every label the answer gets wrong. Empty means valid.
    context: what an answer may point into (the item's responses, the task's runs), read only
    when a field does (spans, rewrites), so most answers are checked without a query."""
    return label_errors(answer, project.labels, context, "not a field of this project's label schema")


def label_errors(
    answer: dict[str, Any],
    labels: Sequence[Label],
    context: AnswerContext | None = None,
    unknown: str = "not a field of these labels",
    key: bool = False,
) -> dict[str, str]:
    """answer_errors over any labels (a project's, an exam's). key: an answer key, which gives
    only the fields it scores by (free text there is a model answer for a grader, checked for
    nothing but its name)."""
    errors: dict[str, str] = {}
    known = {label.name for label in labels}
    for name in answer:
        if name not in known:
            errors[name] = unknown
    for label in labels:
        value = answer.get(label.name)
        kind = field_type(label)
        if value is None:
            if label.required and not key:
                errors[label.name] = "required"
            continue
        if key and kind.comparison_order is None:
            continue
        error = kind.answer_error(label, value)
        if error is None and kind.needs_responses and context is not None:
            error = kind.response_error(label, value, context)
        if error is not None:
            errors[label.name] = error
    return errors


def completed_answer(answer: dict[str, Any], project: ProjectBody, context: AnswerContext) -> dict[str, Any]:
    """A valid answer as it is stored: the fields citing model runs get the runs' texts."""
    done = dict(answer)
    for label in project.labels:
        kind = field_type(label)
        if kind.needs_runs and done.get(label.name) is not None:
            done[label.name] = kind.completed(label, done[label.name], context)
    return done


def cites_runs(project: ProjectBody) -> bool:
    return any(field_type(label).needs_runs for label in project.labels)


class TaskContext:
    """answer_errors' context for a task: its item's responses' lengths and its runs, each read
    when first asked for. assignment_id: the task whose runs an answer may cite (for a reviewer's
    correction, the annotation's)."""

    def __init__(self, session: Session, project: ProjectBody, item_id: int, assignment_id: int | None) -> None:
        self._session, self._project, self._item_id, self._assignment_id = session, project, item_id, assignment_id
        self._lengths: Mapping[str, int] | None = None
        self._turns: dict[str, list[tuple[int, str, str]]] = {}

    def response_lengths(self) -> Mapping[str, int]:
        if self._lengths is None:
            generation = self._project.generation
            endpoints = [e.name for e in generation.endpoints] if generation else []
            self._lengths = lengths_in(self._session, self._item_id, self._item_id, endpoints).get(self._item_id, {})
        return self._lengths

    def turns(self, label: str) -> list[tuple[int, str, str]]:
        if label not in self._turns:
            self._turns[label] = conversation(self._session, self._assignment_id, label) if self._assignment_id else []
        return self._turns[label]


def seconds_on_task(started_at: dt.datetime | None, now: dt.datetime) -> int:
    """Server time from the first opening to now; a task never opened has no measured time (0)."""
    return max(0, int((now - as_utc(started_at)).total_seconds())) if started_at else 0


@dataclass(frozen=True)
class NewSubmission:
    assignment_id: int
    answer: dict[str, Any]


def start_assignments(session: Session, opened: Mapping[int, dt.datetime]) -> None:
    """Record when each expert first opened a task (assignment id -> server time); opening it
    again changes nothing. One statement sent with many parameter sets, not a query per task."""
    if not opened:
        return
    table = Assignment.__table__
    assert isinstance(table, Table)
    session.execute(
        update(table)
        .where(table.c.id == bindparam("opened_id"), table.c.status == "assigned", table.c.started_at.is_(None))
        # A plain value for updated_at: its SQL default does not compile for many parameter sets.
        .values(started_at=bindparam("opened_at"), updated_at=utcnow()),
        [{"opened_id": assignment_id, "opened_at": at} for assignment_id, at in opened.items()],
    )


def record_submissions(session: Session, submissions: list[NewSubmission], now: dt.datetime | None = None) -> int:
    """Store answers for open assignments and mark them submitted; a repeat is ignored.

    Time on task is the server's: from when the task was first opened to now. A task answered
    without being opened has no measured time (0 s), which the time-on-task gate refuses.
    """
    if not submissions:
        return 0
    now = now or utcnow()
    started = dict(
        session.execute(
            select(Assignment.id, Assignment.started_at).where(
                matches_any(session, Assignment.id, [s.assignment_id for s in submissions]),
                Assignment.status == "assigned",
            )
        ).all()
    )
    worked = {assignment_id: seconds_on_task(start, now) for assignment_id, start in started.items()}
    rows = [
        {"assignment_id": s.assignment_id, "answer": s.answer, "time_on_task_seconds": worked[s.assignment_id]}
        for s in submissions
        if s.assignment_id in worked
    ]
    stored = insert_ignoring_conflicts(session, Submission, rows, ["assignment_id"])
    update_grouped(
        session,
        Assignment,
        worked,
        lambda seconds: {"status": "submitted", "submitted_at": now, "worked_seconds": seconds},
        Assignment.status == "assigned",
    )
    return stored


# Submission id -> its answer: what a caller has already read of a batch (the review's one read).
KnownAnswers = Mapping[int, Mapping[str, Any]]


def answers_of(session: Session, submission_ids: Iterable[int], known: KnownAnswers) -> KnownAnswers:
    """These submissions' answers: from `known` where it holds them, the rest read in one query.
    A submitted answer never changes, so one read serves every stage of a review."""
    missing = sorted({sid for sid in submission_ids if sid not in known})
    if not missing:
        return known
    fetched: dict[int, Mapping[str, Any]] = {}
    for start in range(0, len(missing), 50_000):
        fetched.update(
            plain_rows(
                session,
                select(Submission.id, Submission.answer).where(
                    matches_any(session, Submission.id, missing[start : start + 50_000])
                ),
            ).all()  # a result has .keys(): dict.update would take it for a mapping
        )
    return ChainMap(fetched, known)  # type: ignore[arg-type]
