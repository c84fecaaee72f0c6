"""What the web routers share: the service's resources, the caller's identity, request bounds.

Routers (client_api, expert_api, pages) import this module, never app.web, which imports them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

import psycopg
from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg.errors import LockNotAvailable, QueryCanceled
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from nightshift import resources as root
from nightshift.platform import driver
from nightshift.platform.db import make_engine, make_sessionmaker, single_statements, transaction
from nightshift.platform.keys import Principal, authenticate
from nightshift.resources import Resources

SESSION_COOKIE = "nightshift_session"


def resources() -> Resources:
    """The process's one Resources (the composition root's), secrets resolved as the tasks do."""
    import tasks.runtime  # noqa: F401  (supplies Prefect's secret resolver to the root)

    return root.current()


# The hot path's statements on the event loop wait at most this long for a row lock, and run at
# most this long: a stall there stalls every request of the worker. Past either, the route goes
# again in a worker thread, where waiting holds up nobody (each statement is atomic on its own,
# so one cut short changed nothing).
LOOP_OPTIONS = "-c lock_timeout=100 -c statement_timeout=2000"
# The name the loop's own connections show in pg_stat_activity.
LOOP_CONNECTION = "nightshift-api-loop"


def cut_short(exc: OperationalError | psycopg.OperationalError) -> bool:
    """A statement of the loop's connections stopped by its lock or statement timeout."""
    found = exc.orig if isinstance(exc, OperationalError) else exc
    return isinstance(found, LockNotAvailable | QueryCanceled)


@dataclass
class Service:
    """What the routes share: resources built once at start-up (the composition root)."""

    resources: Resources
    _loop_sessions: sessionmaker[Session] | None = field(default=None, repr=False)
    _loop_driver: psycopg.Connection[Any] | None = field(default=None, repr=False)
    _opening: asyncio.Future[None] | None = field(default=None, repr=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with transaction(self.resources.sessions) as session:
            yield session

    @contextmanager
    def single_statements(self) -> Iterator[Session]:
        with single_statements(self.resources.sessions) as session:
            yield session

    @property
    def on_loop(self) -> bool:
        """Whether the hot path runs on the event loop: on PostgreSQL, whose two statements take a
        millisecond, where handing each request to a worker thread and back cost more than the
        statements. SQLite's writes may wait seconds for the file's lock: they stay in threads."""
        return self.resources.engine.dialect.name == "postgresql"

    async def loop_driver(self) -> psycopg.Connection[Any]:
        """The event loop's own psycopg connection (autocommit, LOOP_OPTIONS), for statements run
        past SQLAlchemy (platform.driver). Opened in a thread, so a slow connect stalls no other
        request; a route that uses it runs from start to end without awaiting, so one per
        process is all it ever needs."""
        # One opening, awaited by every request that finds none: a cold worker's first requests
        # arrive together, and each opening its own would be a storm of connections, all but one
        # left behind. They are woken together once it is open (a lock would hand itself on to
        # one waiter at a time, each behind every request arriving meanwhile); shielded, so a
        # request that goes away cancels its wait, not the opening.
        while self._loop_driver is None or self._loop_driver.closed:
            if self._opening is None:
                self._opening = asyncio.ensure_future(self._open_loop_driver())
            await asyncio.shield(self._opening)
        return self._loop_driver

    async def _open_loop_driver(self) -> None:
        try:
            url = self.resources.settings.resolved_database_url
            self._loop_driver = await run_in_threadpool(driver.connect, url, LOOP_OPTIONS, LOOP_CONNECTION)
        finally:
            self._opening = None

    def drop_loop_driver(self) -> None:
        """After an error that may have broken it: the next request opens a new one."""
        if self._loop_driver is not None:
            self._loop_driver.close()
            self._loop_driver = None

    @contextmanager
    def loop_session(self) -> Iterator[Session]:
        """A session on the event loop's own pool of one, for what the driver's statements leave
        (a spec not yet parsed, an item a field looks into): it connects only if used."""
        if self._loop_sessions is None:
            engine = make_engine(
                self.resources.settings.resolved_database_url, pool_size=1, max_overflow=0, options=LOOP_OPTIONS
            )
            self._loop_sessions = make_sessionmaker(engine)
        with self._loop_sessions() as session:
            yield session

    def close(self) -> None:
        self.drop_loop_driver()
        if self._loop_sessions is not None:
            bind = self._loop_sessions.kw["bind"]
            bind.dispose()
            self._loop_sessions = None


def service(request: Request) -> Service:
    found: Service = request.app.state.service
    return found


async def _service(request: Request) -> Service:
    # async: a plain function as a dependency costs every request a hop to the thread pool and back.
    return service(request)


ServiceDep = Annotated[Service, Depends(_service)]
# Ids are 64-bit in the database: a larger number is a 422 here, never an overflow there.
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
bearer = HTTPBearer(auto_error=False, description="A personal token (nse_…) or a client API key (nsc_…).")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def principal(session: Session, credentials: HTTPAuthorizationCredentials | None, kind: str) -> Principal:
    """The caller, or 401 without saying whether a key exists; a key of the other kind is refused too."""
    found = authenticate(session, credentials.credentials if credentials else None)
    if found is None or found.kind != kind:
        raise unauthorized()
    return found


def unauthorized() -> HTTPException:
    return HTTPException(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})


def is_upload_path(path: str) -> bool:
    """The one route whose body streams to disk under its own, larger, bound (the upload limit)."""
    return path.startswith("/api/client/projects/") and path.endswith("/batches/upload")
