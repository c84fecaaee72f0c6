"""The workbench's exams and training: the list with each one's standing, and an attempt taken one
item at a time (a training set shows the right answer and why after each)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from app.deps import Id, service
from app.pages import _me, _page, _to_signin, answer_from_form
from nightshift.platform.errors import NotFoundError
from nightshift.work import access, exams

router = APIRouter(include_in_schema=False)

_STATUS_WORDS = {
    "passed": "Passed",
    "done": "Completed",
    "open": "In progress",
    "pending_review": "Waiting for a reviewer's grade",
    "cooling_down": "Retake later",
    "no_attempts_left": "No attempts left",
    "available": "Not taken",
}


@router.get("/exams")
def exam_list(request: Request) -> Response:
    svc = service(request)
    me = _me(request, svc)
    if me is None:
        return _to_signin()
    with svc.transaction() as session:
        found = exams.standings(session, me.id)
    return _page(request, "exams.html", title="Exams and training", exams=found, words=_STATUS_WORDS)


@router.post("/exams/{slug}")
def exam_start(slug: str, request: Request) -> Response:
    svc = service(request)
    me = _me(request, svc)
    if me is None:
        return _to_signin()
    try:
        with svc.transaction() as session:
            attempt_id = exams.start_attempt(session, me.id, slug[:100])
    except NotFoundError:
        return _page(request, "message.html", 404, title="Not found", message="There is no such exam.")
    except exams.ExamRefused as exc:
        return _page(request, "message.html", 409, title="Exam", message=str(exc), link=("Exams", "/exams"))
    return RedirectResponse(f"/exams/attempts/{attempt_id}", status_code=303)


@router.get("/exams/attempts/{attempt_id}")
def attempt_page(attempt_id: Id, request: Request) -> Response:
    svc = service(request)
    me = _me(request, svc)
    if me is None:
        return _to_signin()
    try:
        with svc.transaction() as session:
            view = exams.view_attempt(session, me.id, attempt_id)
    except NotFoundError:
        return _page(request, "message.html", 404, title="Not found", message="There is no such attempt of yours.")
    return _page(request, "exam.html", title=view.title, view=view, values={}, errors={}, feedback=None)


@router.post("/exams/attempts/{attempt_id}/{item_id}")
async def attempt_answer(attempt_id: Id, item_id: Id, request: Request) -> Response:
    svc = service(request)
    me = _me(request, svc)
    if me is None:
        return _to_signin()
    form = await request.form()
    try:
        with svc.transaction() as session:
            view = exams.view_attempt(session, me.id, attempt_id)
        answer = answer_from_form(form, view.labels)
        with svc.transaction() as session:
            scored = exams.answer_item(session, me.id, attempt_id, item_id, answer)
    except NotFoundError:
        return _page(request, "message.html", 404, title="Not found", message="There is no such attempt of yours.")
    except access.ConflictError as exc:
        return _page(request, "message.html", 409, title="Exam", message=str(exc), link=("Exams", "/exams"))
    except access.AnswerInvalid as exc:
        return _page(request, "exam.html", 422, title=view.title, view=view, values=answer, errors=exc.errors)
    if view.kind == "training":
        # Right after answering: what was right and why, before the next item.
        with svc.transaction() as session:
            after = exams.view_attempt(session, me.id, attempt_id)
        shown = {"correct": scored.correct, "right_answer": scored.right_answer, "explanation": scored.explanation}
        return _page(request, "exam.html", title=view.title, view=after, values={}, errors={}, feedback=shown)
    return RedirectResponse(f"/exams/attempts/{attempt_id}", status_code=303)
