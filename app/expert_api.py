"""The expert JSON API: the workbench's actions for experts who use their own tools."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

import orjson
import psycopg
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.deps import Credentials, Id, Service, ServiceDep, cut_short, principal, unauthorized
from nightshift.payouts import earnings as payouts_earnings
from nightshift.review import decisions
from nightshift.work import access, answers, model_runs, telemetry
from nightshift.work import tasks as work_tasks

router = APIRouter(prefix="/api/expert", tags=["expert"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Not one of your assignments."}}
CONFLICT: dict[int | str, dict[str, Any]] = {409: {"description": "The assignment is no longer open."}}


class TaskSummary(BaseModel):
    assignment_id: int
    role: str
    project: str
    language: str
    due_at: dt.datetime


class Task(BaseModel):
    assignment_id: int
    role: str
    status: str
    project: str
    project_name: str
    instructions: str
    expected_minutes: float
    labels: list[dict[str, Any]]
    item: dict[str, Any] = Field(description="external_id and the item's input fields.")
    language: str
    due_at: dt.datetime
    started_at: dt.datetime | None
    draft: dict[str, Any] | None = None
    subject_answer: dict[str, Any] | None = Field(default=None, description="Review tasks: the annotation judged.")
    annotator: str | None = Field(default=None, description="Review tasks: the annotator's pseudonym.")
    annotations: list[dict[str, Any]] | None = Field(
        default=None, description="Adjudication tasks: the accepted annotations, each with its annotator's pseudonym."
    )
    adjudication_reason: str | None = Field(default=None, description="Adjudication tasks: why the item came here.")
    responses: list[dict[str, Any]] | None = Field(
        default=None,
        description="The project's models' answers to the item: label (A, B, …), response_id, content; "
        "which model gave which is not shown.",
    )
    runs: dict[int, dict[str, Any]] | None = Field(
        default=None, description="Your runs of rewritten prompts on this task, by run_id (prompt_rewrite labels)."
    )
    rewrite_from: str | None = Field(default=None, description="The item's prompt, where a rewrite starts from.")


class RunIn(BaseModel):
    label: str = Field(min_length=1, max_length=64, description="The prompt_rewrite or chat label the run is for.")
    prompt: str = Field(
        min_length=1, max_length=100_000, description="The rewritten prompt, or the chat's next message."
    )


class Run(BaseModel):
    run_id: int
    label: str
    prompt: str
    status: str = Field(description="ok, or failed (error says why: a timeout, an HTTP status…).")
    content: str | None
    latency_ms: int | None
    error: str | None


class AnswerIn(BaseModel):
    answer: dict[str, Any] = Field(description="Label name → value, as the project's label schema declares.")


class SubmissionIn(AnswerIn):
    telemetry: dict[str, Any] | None = Field(
        default=None,
        description="How the answer was written, if the client tracks it: {pastes: [{field, chars, at}], typing: "
        "[{field, chars, at}]} (at: seconds since the task opened; at most 500 events each). A mostly pasted text "
        "raises the submission's risk.",
    )


class Submitted(BaseModel):
    submission_id: int


class SkipIn(BaseModel):
    reason: str = Field(min_length=1, max_length=access.MAX_REASON)


class ReviewIn(BaseModel):
    decision: Literal["approve", "reject", "correct"]
    reason: str | None = Field(default=None, max_length=access.MAX_REASON, description="Required to reject.")
    corrected_answer: dict[str, Any] | None = Field(default=None, description="Required to correct.")


class EarningsOut(BaseModel):
    hourly_rate: Decimal
    paid_hours: Decimal
    time_pay: Decimal
    bonuses: Decimal
    deductions: Decimal
    total: Decimal
    unpaid_hours: Decimal
    submitted_tasks: int
    by_period: list[dict[str, Any]]
    adjustments: list[dict[str, Any]] = Field(
        default_factory=list, description="Bonuses, deductions and corrections, newest first, each with why."
    )
    levels: list[dict[str, Any]] = Field(
        default_factory=list, description="Per project with levels: the level you are at now and its hourly rate."
    )


@router.get("/assignments")
def list_assignments(
    svc: ServiceDep,
    credentials: Credentials,
    role: Literal["annotate", "review", "adjudicate"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[TaskSummary]:
    """Your open assignments, soonest due first."""
    with svc.transaction() as session:
        me = principal(session, credentials, "expert")
        return [TaskSummary(**t) for t in work_tasks.open_tasks(session, me.id, role, limit)]


def _task_or_nothing(session: Session, expert_id: int, assignment_id: int | None) -> Any:
    """The task opened for the expert, or 204 when there was none to give."""
    if assignment_id is None:
        return Response(status_code=204)
    return Task(**vars(work_tasks.view_task(session, expert_id, assignment_id)))


@router.get("/assignments/next", response_model=Task, responses={204: {"description": "Nothing open."}})
def next_assignment(svc: ServiceDep, credentials: Credentials) -> Any:
    """Your next annotation task, opened: its time on task starts now if it had not started."""
    with svc.transaction() as session:
        me = principal(session, credentials, "expert")
        return _task_or_nothing(session, me.id, work_tasks.next_task(session, me.id))


@router.get("/assignments/{assignment_id}", responses=NOT_FOUND)
def get_assignment(assignment_id: Id, svc: ServiceDep, credentials: Credentials) -> Task:
    """One of your tasks; the first view of an open task starts its time on task."""
    with svc.transaction() as session:
        me = principal(session, credentials, "expert")
        return Task(**vars(work_tasks.view_task(session, me.id, assignment_id)))


@router.put("/assignments/{assignment_id}/draft", status_code=204, responses={**NOT_FOUND, **CONFLICT})
def save_draft(assignment_id: Id, body: AnswerIn, svc: ServiceDep, credentials: Credentials) -> None:
    """Keep a partial answer; the schema is checked only on submission."""
    with svc.transaction() as session:
        me = principal(session, credentials, "expert")
        answers.save_draft(session, me.id, assignment_id, body.answer)


@router.post(
    "/assignments/{assignment_id}/submission",
    status_code=201,
    response_model=Submitted,
    responses={**NOT_FOUND, **CONFLICT},
)
async def submit(assignment_id: Id, body: SubmissionIn, svc: ServiceDep, credentials: Credentials) -> Response:
    """Submit the answer: 422 names each field that breaks the label schema, and nothing is stored."""
    # Checked first: bad telemetry is a 422 like a bad answer, and nothing is stored.
    sent = telemetry.parse(body.telemetry) if body.telemetry is not None else None
    # The hot path: the token is checked in the same read as the task, and the one write is a
    # single statement (see answers.submit_answer_with_key). On PostgreSQL both run here, on the
    # event loop's own connection, not in a worker thread (Service.on_loop).
    key = credentials.credentials if credentials else None
    submission_id: int | None
    if svc.on_loop:
        connection = await svc.loop_driver()
        try:
            with svc.loop_session() as session:
                submission_id = answers.submit_answer_with_key(
                    session, key, assignment_id, body.answer, driver=connection
                )
        except (OperationalError, psycopg.OperationalError) as exc:
            if not cut_short(exc):
                # The connection was lost (a restart, a failover): a new one for the next request.
                # This one's write may have landed before the loss; the thread then finds the
                # task closed and answers 409, never a second submission.
                if not connection.broken:
                    raise
                svc.drop_loop_driver()
            # Or the task's row is locked (a skip, a draft or an expiry in flight): wait in a thread.
            submission_id = await run_in_threadpool(_submit, svc, key, assignment_id, body.answer)
    else:
        submission_id = await run_in_threadpool(_submit, svc, key, assignment_id, body.answer)
    if submission_id is None:
        raise unauthorized()
    if sent is not None:
        await run_in_threadpool(_record_telemetry, svc, submission_id, sent)
    # The body as bytes, past FastAPI's validation and serialisation of a returned model, a real
    # share of the route's time for one integer. response_model still documents it.
    return Response(orjson.dumps({"submission_id": submission_id}), 201, media_type="application/json")


def _submit(svc: Service, key: str | None, assignment_id: int, answer: dict[str, Any]) -> int | None:
    with svc.single_statements() as session:
        return answers.submit_answer_with_key(session, key, assignment_id, answer)


def _record_telemetry(svc: Service, submission_id: int, sent: dict[str, Any]) -> None:
    with svc.transaction() as session:
        telemetry.record_for_submission(session, submission_id, sent)


@router.post(
    "/assignments/{assignment_id}/runs",
    status_code=201,
    response_model=Run,
    responses={
        **NOT_FOUND,
        **CONFLICT,
        422: {"description": "Not a rewrite or chat label, a prompt out of bounds, or a chat at its last turn."},
        429: {"description": "Over the project's runs per expert per hour."},
    },
)
def run_rewrite(assignment_id: Id, body: RunIn, svc: ServiceDep, credentials: Credentials) -> Response:
    """Run a rewritten prompt against the project's model, or send a chat's next message (the
    conversation so far goes with it). A run the model did not answer is stored too (status
    failed); cite an answered run's run_id in the prompt_rewrite answer, every answered turn's in
    the chat answer."""
    with svc.transaction() as session:
        me = principal(session, credentials, "expert")
        try:
            pending = model_runs.start_run(session, me.id, assignment_id, body.label, body.prompt)
        except model_runs.RunLimited as exc:
            return Response(orjson.dumps({"detail": str(exc)}), 429, media_type="application/json")
        except model_runs.RunRefused as exc:
            return Response(orjson.dumps({"detail": {body.label[:64]: str(exc)}}), 422, media_type="application/json")
    ran = model_runs.finish_run(svc.resources.sessions, svc.resources.secrets, svc.resources.models, pending)
    body_out = {k: v for k, v in ran.as_dict().items() if k != "endpoint"}
    return Response(orjson.dumps(body_out), 201, media_type="application/json")


@router.post("/assignments/{assignment_id}/skip", status_code=204, responses={**NOT_FOUND, **CONFLICT})
def skip(assignment_id: Id, body: SkipIn, svc: ServiceDep, credentials: Credentials) -> None:
    """Pass the task on, with a reason; another expert gets it."""
    with svc.transaction() as session:
        me = principal(session, credentials, "expert")
        answers.skip_task(session, me.id, assignment_id, body.reason)


@router.post("/reviews/next", response_model=Task, responses={204: {"description": "Nothing to review."}})
def claim_review(svc: ServiceDep, credentials: Credentials) -> Any:
    """Your open review task, or a new one (reviewers and adjudicators only)."""
    with svc.transaction() as session:
        me = principal(session, credentials, "expert")
        found = decisions.claim_review(session, me.id)
        if found is None:
            return Response(status_code=204)
        return Task(**vars(work_tasks.view_task(session, me.id, found)))


@router.post("/reviews/{assignment_id}/decision", status_code=204, responses={**NOT_FOUND, **CONFLICT})
def decide(assignment_id: Id, body: ReviewIn, svc: ServiceDep, credentials: Credentials) -> None:
    """Approve, reject with a reason, or correct the annotation under review."""
    with svc.transaction() as session:
        me = principal(session, credentials, "expert")
        decisions.decide_review(session, me.id, assignment_id, body.decision, body.reason, body.corrected_answer)


@router.post("/adjudications/next", response_model=Task, responses={204: {"description": "Nothing to adjudicate."}})
def claim_adjudication(svc: ServiceDep, credentials: Credentials) -> Any:
    """Your open adjudication, or a new one (adjudicators only). Submit your final answer to it as
    to an annotation: `POST /api/expert/assignments/{id}/submission`."""
    with svc.transaction() as session:
        me = principal(session, credentials, "expert")
        return _task_or_nothing(session, me.id, decisions.claim_adjudication(session, me.id))


@router.get("/earnings")
def earnings(svc: ServiceDep, credentials: Credentials) -> EarningsOut:
    """Hours, rate, bonuses and pay to date."""
    with svc.transaction() as session:
        me = principal(session, credentials, "expert")
        return EarningsOut(**vars(payouts_earnings.earnings(session, me.id)))
