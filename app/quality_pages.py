"""The workbench's quality pages: an expert's own quality with the reviews of their work and their
appeals, and the adjudicators' queue of appeals to decide."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from app.deps import Id, service
from app.pages import _me, _page, _to_signin
from nightshift.notify import messages, ops_outbox
from nightshift.platform.errors import NotFoundError
from nightshift.review import appeals
from nightshift.review.own_quality import own_quality
from nightshift.work import access

router = APIRouter(include_in_schema=False)


@router.get("/quality")
def quality_page(request: Request) -> Response:
    svc = service(request)
    me = _me(request, svc)
    if me is None:
        return _to_signin()
    with svc.transaction() as session:
        mine = own_quality(session, me.id)
    return _page(request, "quality.html", title="Your quality", q=mine, errors={})


@router.post("/appeals")
async def file_appeal(request: Request) -> Response:
    svc = service(request)
    me = _me(request, svc)
    if me is None:
        return _to_signin()
    form = await request.form()
    try:
        submission_id = int(str(form.get("submission_id") or "0")[:20])
    except ValueError:
        submission_id = 0
    if not 1 <= submission_id < 2**63:
        return _page(request, "message.html", 404, title="Not found", message="There is no such annotation of yours.")
    try:
        with svc.transaction() as session:
            appeals.file_appeal(session, me.id, submission_id, str(form.get("reason") or ""))
    except NotFoundError:
        return _page(request, "message.html", 404, title="Not found", message="There is no such annotation of yours.")
    except (access.ConflictError, appeals.AppealRefused) as exc:
        return _page(request, "message.html", 409, title="Appeal", message=str(exc), link=("Your quality", "/quality"))
    except access.AnswerInvalid as exc:
        with svc.transaction() as session:
            mine = own_quality(session, me.id)
        return _page(request, "quality.html", 422, title="Your quality", q=mine, errors={submission_id: exc.errors})
    return RedirectResponse("/quality?flash=Appeal+filed%3A+an+adjudicator+will+decide", status_code=303)


@router.get("/appeals")
def appeal_queue(request: Request) -> Response:
    svc = service(request)
    me = _me(request, svc)
    if me is None:
        return _to_signin()
    with svc.transaction() as session:
        waiting = appeals.open_appeals(session, me.id)
    return _page(request, "appeals.html", title="Appeals", appeals=waiting, errors={})


@router.post("/appeals/{appeal_id}")
async def decide(appeal_id: Id, request: Request) -> Response:
    svc = service(request)
    me = _me(request, svc)
    if me is None:
        return _to_signin()
    form = await request.form()
    decision = str(form.get("decision") or "")
    try:
        if decision not in ("uphold", "reject"):
            raise access.AnswerInvalid({"decision": "choose uphold or reject"})
        with svc.transaction() as session:
            decided = appeals.decide_appeal(
                session,
                me.id,
                appeal_id,
                decision == "uphold",
                str(form.get("note") or ""),
                correct_gold=form.get("correct_gold") == "yes",
            )
            if decided.flagged_gold_item is not None:
                item = decided.flagged_gold_item
                view = appeals.appeal_view(session, appeal_id)
                message = messages.gold_flagged(view.project, item, appeals.upheld_on_gold(session, item))
                ops_outbox.enqueue(session, svc.resources.settings.slack_ops_channel, message)
    except NotFoundError:
        return _page(request, "message.html", 404, title="Not found", message="There is no such appeal.")
    except (access.ConflictError, appeals.AppealRefused) as exc:
        return _page(request, "message.html", 409, title="Appeal", message=str(exc), link=("Appeals", "/appeals"))
    except access.AnswerInvalid as exc:
        with svc.transaction() as session:
            waiting = appeals.open_appeals(session, me.id)
        return _page(request, "appeals.html", 422, title="Appeals", appeals=waiting, errors={appeal_id: exc.errors})
    return RedirectResponse(f"/appeals?flash=Appeal+{decided.status}", status_code=303)
