"""The built-in expert simulator: synthetic experts of known accuracy and speed do open work."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightshift.models import Assignment, Batch, Expert, Item, utcnow
from nightshift.projects import project_spec
from nightshift.submissions import NewSubmission, answer_errors, record_submissions, start_assignments
from nightshift.synthetic import simulated_answer


def open_assignments(session: Session, batch_id: int) -> list[int]:
    return list(
        session.scalars(
            select(Assignment.id)
            .join(Item, Item.id == Assignment.item_id)
            .where(Item.batch_id == batch_id, Assignment.status == "assigned", Assignment.role == "annotate")
            .order_by(Assignment.id)
        )
    )


def simulate_work(session: Session, batch_id: int, assignment_ids: list[int]) -> int:
    """Each assigned expert answers as their profile says; returns how many submissions were stored."""
    project = project_spec(session, session.get_one(Batch, batch_id).project_id).project
    rows = session.execute(
        select(Assignment.id, Item.content_hash, Expert.handle)
        .join(Item, Item.id == Assignment.item_id)
        .join(Expert, Expert.id == Assignment.expert_id)
        .where(Assignment.id.in_(assignment_ids), Assignment.status == "assigned")
    ).all()
    now = utcnow()
    submissions = []
    opened: dict[int, dt.datetime] = {}
    for assignment_id, content_hash, handle in rows:
        answer, seconds = simulated_answer(content_hash, handle, project.labels, project.expected_minutes_per_item)
        if not answer_errors(answer, project):
            submissions.append(NewSubmission(assignment_id, answer))
            # The simulated expert opened the task as long ago as they took to answer it; the
            # server clock measures the rest, as for a real expert.
            opened[assignment_id] = now - dt.timedelta(seconds=seconds)
    start_assignments(session, opened)
    return record_submissions(session, submissions, now)
