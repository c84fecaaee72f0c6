"""An expert's tasks at the workbench: the open ones, the next one, and one task as they see it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightshift.fields import field_type
from nightshift.generate.responses import answers_of
from nightshift.platform import access
from nightshift.platform.models import Assignment, AssignmentDraft, Item, Project, Submission, as_utc, utcnow
from nightshift.work.access import annotator_pseudonym, owned, project_of
from nightshift.work.model_runs import runs_of
from nightshift.work.submissions import start_assignments


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
    # The project's models' answers to the item, labelled A, B, … without the model's name, so the
    # expert judges the answer, not its maker.
    responses: list[dict[str, Any]] | None = None
    # The expert's runs of rewritten prompts on this task, by id (model-in-the-loop rewrites).
    runs: dict[int, dict[str, Any]] | None = None
    # The item's prompt, where a rewrite starts from.
    rewrite_from: str | None = None


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


def view_task(
    session: Session, expert_id: int, assignment_id: int, now: dt.datetime | None = None, via: str | None = "api"
) -> TaskView:
    """The task with its instructions and form; the first view of an open task starts its clock.
    Every view is in the access log (the item's content is what it shows), by way of `via`; None:
    not a read (the caller only checks the task, e.g. a posted form)."""
    assignment = owned(session, expert_id, assignment_id)
    if assignment.status == "assigned" and assignment.started_at is None:
        start_assignments(session, {assignment.id: now or utcnow()})
        session.refresh(assignment)
    item = session.get_one(Item, assignment.item_id)
    if via is not None:
        access.record(
            session,
            "expert",
            str(expert_id),
            assignment.role,
            via,
            item_id=item.id,
            batch_id=item.batch_id,
            assignment_id=assignment.id,
        )
    project_id, project = project_of(session, assignment.item_id)
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
    endpoints = [e.name for e in project.generation.endpoints] if project.generation else []
    answers = answers_of(session, item.id, endpoints)
    if answers:
        view.responses = [{"label": a.label, "response_id": a.response_id, "content": a.content} for a in answers]
    if project.generation and any(field_type(label).needs_runs for label in project.labels):
        before = {a.endpoint: a.content for a in answers}
        # Blind as the responses are: a run's endpoint is not shown, only the answers.
        view.runs = {
            r.run_id: {k: v for k, v in r.as_dict().items() if k != "endpoint"} | {"before": before.get(r.endpoint)}
            for r in runs_of(session, assignment.id)
        }
        view.rewrite_from = str(item.payload.get(project.generation.prompt_field) or "")
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
            )
        ]
    return view
