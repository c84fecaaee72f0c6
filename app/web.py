"""`nightshift serve`: one web service for the expert workbench, the expert API and the client API.

A thin face: every route authenticates, opens one transaction, calls the domain core and maps its
errors to HTTP. Each route commits before it answers, so what a response says is stored.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from app import client_api, exam_pages, expert_api, pages, quality_pages
from app.deps import Service, is_upload_path, resources
from app.limits import BodyLimits
from app.local_server import UvicornThread
from nightshift.platform.errors import NightshiftError, NotFoundError
from nightshift.platform.heap import settle_heap
from nightshift.resources import Resources
from nightshift.work.access import AnswerInvalid, ConflictError

log = logging.getLogger("nightshift.web")


def _not_found(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=404)


def _conflict(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=409)


def _invalid_answer(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AnswerInvalid)
    # The same shape as FastAPI's own 422s: where, and why.
    detail = [{"loc": ["body", "answer", name], "msg": why, "type": "label_schema"} for name, why in exc.errors.items()]
    return JSONResponse({"detail": detail}, status_code=422)


def _refused(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=400)


def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # The submitted values are left out: a field may hold a token someone pasted by mistake.
    detail = [{"loc": e["loc"], "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    return JSONResponse({"detail": detail}, status_code=422)


def create_app(resources: Resources) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # A route runs in the thread pool and holds a pooled connection; with more threads than
        # connections the pool lends overflow connections, opened and closed per request
        # (a PostgreSQL backend forked each time).
        to_thread.current_default_thread_limiter().total_tokens = resources.engine.pool.size()
        yield
        app.state.service.close()

    app = FastAPI(
        lifespan=lifespan,
        title="Nightshift",
        version="1",
        description="The expert workbench (pages), the expert API and the client API of Nightshift.",
    )
    app.state.service = Service(resources)
    # Bodies are bounded before any parser sees them; the upload streams its own, larger, body.
    app.add_middleware(BodyLimits, max_bytes=resources.settings.max_request_bytes, exempt=is_upload_path)
    app.add_exception_handler(NotFoundError, _not_found)
    app.add_exception_handler(ConflictError, _conflict)
    app.add_exception_handler(AnswerInvalid, _invalid_answer)
    app.add_exception_handler(NightshiftError, _refused)
    app.add_exception_handler(RequestValidationError, _validation)
    app.include_router(expert_api.router)
    app.include_router(client_api.router)
    app.include_router(pages.router)
    app.include_router(exam_pages.router)
    app.include_router(quality_pages.router)
    # The workbench's one script (marking spans of a model's answer); nothing else is served from disk.
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, Any]:
        return {"ok": True}

    return app


# Seconds an idle keep-alive connection stays open. It must outlast what clients allow themselves:
# with uvicorn's default of 5 s, equal to httpx's own keep-alive expiry, a client sending on a
# connection idle for just under 5 s met the server's close on the way and got a connection reset
# on a POST, which no client retries. 75 s outlasts httpx, requests and browsers, and the 60 s idle
# timeout of the usual load balancers in front (which must close first, not the service).
KEEP_ALIVE_SECONDS = 75


class ServiceThread(UvicornThread):
    """The web service on 127.0.0.1 in a background thread (the demo, tests, the load bench)."""

    def __init__(self, app: FastAPI, port: int = 0) -> None:
        super().__init__(app, port, timeout_keep_alive=KEEP_ALIVE_SECONDS)

    @property
    def url(self) -> str:
        return self.origin


def app_from_environment() -> FastAPI:
    """What `nightshift serve` runs (in each worker process): resources from the environment."""
    app = create_app(resources())
    # The routes, models and their validators are built now and live as long as the process: out
    # of the collector's sight, a full collection no longer walks them all (its pauses land in
    # every in-flight request's latency).
    settle_heap()
    return app
