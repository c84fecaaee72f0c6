"""The expert workbench: pages rendered on the server, plain HTML forms, no front-end build.

Signing in puts the personal token in an HttpOnly, SameSite=Strict cookie: scripts cannot read
it and other sites cannot post forms with it (so no separate CSRF token is needed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import TypeAdapter
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from app.deps import SESSION_COOKIE, Id, Service, service
from nightshift.fields import field_type_named
from nightshift.payouts import earnings
from nightshift.platform.errors import NotFoundError
from nightshift.platform.keys import Principal, authenticate
from nightshift.projects.spec import Label
from nightshift.review import decisions
from nightshift.work import access, answers, exams, model_runs, telemetry
from nightshift.work import tasks as work_tasks

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def _me(request: Request, svc: Service) -> Principal | None:
    with svc.transaction() as session:
        found = authenticate(session, request.cookies.get(SESSION_COOKIE))
    return found if found is not None and found.kind == "expert" else None


def _page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("signed_in", True)
    context.setdefault("flash", request.query_params.get("flash"))
    return templates.TemplateResponse(request, name, context, status_code=status)


def _to_signin() -> RedirectResponse:
    return RedirectResponse("/signin", status_code=303)


def _missing(request: Request) -> HTMLResponse:
    return _page(request, "message.html", 404, title="Not found", message="There is no such task of yours.")


def answer_from_form(form: FormData, labels: list[dict[str, Any]], prefix: str = "") -> dict[str, Any]:
    """The answer a form holds, typed as the schema says; empty fields are left out (so 'required')."""
    answer: dict[str, Any] = {}
    for label in labels:
        value = field_type_named(label["type"]).from_form(form.getlist(prefix + label["name"]))
        if value is not None:
            answer[label["name"]] = value
    return answer


def field_control(label: dict[str, Any]) -> str:
    """The macro of field_controls.html that renders this label's (a spec label as JSON) form control."""
    return field_type_named(label["type"]).control


templates.env.globals["field_control"] = field_control


def chat_turns(task: work_tasks.TaskView | None, label: str, value: Any) -> list[dict[str, Any]]:
    """A chat's turns to show, oldest first, each {run_id, message, reply, rating, marks, note}:
    the task's own answered turns (the annotator's page), else the stored answer's (a review)."""
    stored = value.get("turns") if isinstance(value, dict) else None
    # A draft holds whatever its expert saved (the API takes any JSON): only turns citing a run by
    # its id count, and what they say is shown as text.
    given = (
        {t["run"]: t for t in stored if isinstance(t, dict) and type(t.get("run")) is int}
        if isinstance(stored, list)
        else {}
    )
    runs = (task.runs or {}) if task is not None else {}
    held = sorted((r for r in runs.values() if r["label"] == label and r["status"] == "ok"), key=lambda r: r["run_id"])
    if held:
        turns = [{"run_id": r["run_id"], "message": r["prompt"], "reply": r["content"] or ""} for r in held]
    else:
        turns = [
            {"run_id": run, "message": str(t.get("message") or ""), "reply": str(t.get("reply") or "")}
            for run, t in given.items()
        ]
    for turn in turns:
        rated = given.get(turn["run_id"]) or {}
        marks = rated.get("marks")
        turn |= {
            "rating": rated.get("rating"),
            "marks": [str(m) for m in marks] if isinstance(marks, list) else [],
            "note": str(rated.get("note") or ""),
        }
    return turns


templates.env.globals["chat_turns"] = chat_turns


def _my_task(
    svc: Service, me: Principal, assignment_id: int, role: str | None, read: bool = True
) -> work_tasks.TaskView:
    """The caller's task (of this role, if given); its first view starts the clock. NotFoundError otherwise."""
    with svc.transaction() as session:
        # A form posted back is not a new read of the item: only a page shown is logged.
        task = work_tasks.view_task(session, me.id, assignment_id, via="workbench" if read else None)
        # Raised inside the transaction: a task not shown is not logged as read.
        if role is not None and task.role != role:
            raise NotFoundError(f"no {role} task {assignment_id}")
    return task


@router.get("/")
def home(request: Request) -> Response:
    return RedirectResponse("/work" if _me(request, service(request)) else "/signin", status_code=303)


@router.get("/signin")
def signin_form(request: Request) -> HTMLResponse:
    return _page(request, "signin.html", title="Sign in", signed_in=False)


@router.post("/signin")
async def signin(request: Request) -> Response:
    form = await request.form()
    token = str(form.get("token") or "").strip()
    with service(request).transaction() as session:
        who = authenticate(session, token)
    if who is None or who.kind != "expert":
        return _page(
            request,
            "signin.html",
            401,
            title="Sign in",
            signed_in=False,
            error="That token is not valid or not active.",
        )
    response = RedirectResponse("/work", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=12 * 3600,
    )
    return response


@router.post("/signout")
def signout() -> Response:
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/work")
def task_list(request: Request) -> Response:
    svc = service(request)
    me = _me(request, svc)
    if me is None:
        return _to_signin()
    with svc.transaction() as session:
        tasks = work_tasks.open_tasks(session, me.id)
        training = exams.training_due(session, me.id)
    return _page(request, "tasks.html", title="Tasks", tasks=tasks, training=training)


@router.get("/work/{assignment_id}")
def task_page(assignment_id: Id, request: Request) -> Response:
    svc = service(request)
    me = _me(request, svc)
    if me is None:
        return _to_signin()
    try:
        task = _my_task(svc, me, assignment_id, None)
    except NotFoundError:
        return _missing(request)
    if task.role != "annotate":
        return RedirectResponse(f"/review/{assignment_id}", status_code=303)
    if task.status != "assigned":
        return _page(request, "message.html", title="Task closed", message=f"This task is {task.status}.")
    return _page(request, "task.html", title="Task", task=task, values=task.draft or {}, errors={})


@router.post("/work/{assignment_id}")
async def task_action(assignment_id: Id, request: Request) -> Response:
    svc = service(request)
    me = _me(request, svc)
    if me is None:
        return _to_signin()
    form = await request.form()
    action = form.get("action")
    try:
        task = _my_task(svc, me, assignment_id, "annotate", read=False)
        answer = answer_from_form(form, task.labels)
        if isinstance(action, str) and action.startswith("run:"):
            # In a worker thread: the model may take seconds, and this route runs on the event loop.
            return await run_in_threadpool(_run_model, request, svc, me.id, task, answer, action.removeprefix("run:"))
        with svc.transaction() as session:
            if action == "draft":
                answers.save_draft(session, me.id, assignment_id, answer)
                return RedirectResponse(f"/work/{assignment_id}?flash=Draft+saved", status_code=303)
            if action == "skip":
                answers.skip_task(session, me.id, assignment_id, str(form.get("skip_reason") or ""))
                return RedirectResponse("/work?flash=Task+skipped", status_code=303)
            sent = _telemetry(form)
            submission_id = answers.submit_answer(session, me.id, assignment_id, answer)
            if sent is not None:
                telemetry.record_for_submission(session, submission_id, sent)
    except NotFoundError:
        return _missing(request)
    except access.ConflictError as exc:
        return _page(request, "message.html", 409, title="Task closed", message=str(exc))
    except access.AnswerInvalid as exc:
        return _page(request, "task.html", 422, title="Task", task=task, values=answer, errors=exc.errors)
    with svc.transaction() as session:
        following = work_tasks.next_task(session, me.id)
    target = f"/work/{following}" if following else "/work"
    return RedirectResponse(f"{target}?flash=Submitted.+Thank+you", status_code=303)


def _telemetry(form: FormData) -> dict[str, Any] | None:
    """The workbench's report of how the answer was written, checked (a page without its script sends none)."""
    raw = str(form.get("telemetry") or "")
    if not raw:
        return None
    if len(raw) > telemetry.MAX_BYTES:
        raise access.AnswerInvalid({"telemetry": "too large"})
    try:
        return telemetry.parse(orjson.loads(raw))
    except orjson.JSONDecodeError:
        raise access.AnswerInvalid({"telemetry": "not JSON"}) from None


# The task's labels come as JSON: the field types take them typed.
_LABEL: TypeAdapter[Label] = TypeAdapter(Label)


def _run_model(
    request: Request, svc: Service, expert_id: int, task: work_tasks.TaskView, answer: dict[str, Any], label: str
) -> Response:
    """Ask the model what the label's field holds (a rewritten prompt, a chat's next message), keep
    the form as a draft citing the run, and show the task again with the model's answer."""
    spec_label = next((lab for lab in task.labels if lab["name"] == label), None)
    kind = field_type_named(spec_label["type"]) if spec_label else None
    typed = _LABEL.validate_python(spec_label) if spec_label else None
    # A label that asks the model nothing is refused by start_run, with its reason.
    asked = kind.run_input(typed, answer.get(label)) if kind is not None and kind.needs_runs else ""
    try:
        with svc.transaction() as session:
            pending = model_runs.start_run(session, expert_id, task.assignment_id, label, asked)
    except (model_runs.RunRefused, model_runs.RunLimited) as exc:
        status = 429 if isinstance(exc, model_runs.RunLimited) else 422
        return _page(request, "task.html", status, title="Task", task=task, values=answer, errors={label: str(exc)})
    ran = model_runs.finish_run(svc.resources.sessions, svc.resources.secrets, svc.resources.models, pending)
    answered = ran.status == "ok"
    assert kind is not None  # start_run took it: the label asks the model
    answer[label] = kind.with_run(typed, answer.get(label), ran.run_id if answered else None, ran.prompt)
    with svc.transaction() as session:
        answers.save_draft(session, expert_id, task.assignment_id, answer)
    flash = f"The+model+answered+your+{kind.run_noun}" if answered else "The+model+did+not+answer%3A+try+again"
    return RedirectResponse(f"/work/{task.assignment_id}?flash={flash}", status_code=303)


@router.get("/review")
def review_next(request: Request) -> Response:
    svc = service(request)
    me = _me(request, svc)
    if me is None:
        return _to_signin()
    with svc.transaction() as session:
        found = decisions.claim_review(session, me.id)
    if found is None:
        return _page(request, "message.html", title="Review", message="Nothing is waiting for your review.")
    return RedirectResponse(f"/review/{found}", status_code=303)


@router.get("/review/{assignment_id}")
def review_page(assignment_id: Id, request: Request) -> Response:
    svc = service(request)
    me = _me(request, svc)
    if me is None:
        return _to_signin()
    try:
        task = _my_task(svc, me, assignment_id, "review")
    except NotFoundError:
        return _missing(request)
    if task.status != "assigned":
        return _page(request, "message.html", title="Review closed", message=f"This review is {task.status}.")
    context = {"task": task, "values": task.subject_answer or {}, "errors": {}, "decision": None, "reason": None}
    return _page(request, "review.html", title="Review", **context)


@router.post("/review/{assignment_id}")
async def review_action(assignment_id: Id, request: Request) -> Response:
    svc = service(request)
    me = _me(request, svc)
    if me is None:
        return _to_signin()
    form = await request.form()
    decision = str(form.get("decision") or "")
    reason = str(form.get("reason") or "").strip() or None
    try:
        task = _my_task(svc, me, assignment_id, "review", read=False)
        corrected = answer_from_form(form, task.labels, "corrected.") if decision == "correct" else None
        if decision not in ("approve", "reject", "correct"):
            raise access.AnswerInvalid({"decision": "choose approve, reject or correct"})
        with svc.transaction() as session:
            decisions.decide_review(session, me.id, assignment_id, decision, reason, corrected)  # type: ignore[arg-type]
    except NotFoundError:
        return _missing(request)
    except access.ConflictError as exc:
        return _page(request, "message.html", 409, title="Review closed", message=str(exc))
    except access.AnswerInvalid as exc:
        values = corrected or task.subject_answer or {}
        context = {"task": task, "values": values, "errors": exc.errors, "decision": decision, "reason": reason}
        return _page(request, "review.html", 422, title="Review", **context)
    return RedirectResponse("/review?flash=Decision+recorded", status_code=303)


@router.get("/earnings")
def earnings_page(request: Request) -> Response:
    svc = service(request)
    me = _me(request, svc)
    if me is None:
        return _to_signin()
    with svc.transaction() as session:
        e = earnings.earnings(session, me.id)
    return _page(request, "earnings.html", title="Earnings", e=e)
