"""What the web routers share: the service's resources, the caller's identity, request bounds.

Routers (client_api, expert_api, pages) import this module, never app.web, which imports them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg.errors import LockNotAvailable, QueryCanceled
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from nightshift import resources as root
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


def cut_short(exc: OperationalError) -> bool:
    """A statement of the loop's connection stopped by its lock or statement timeout."""
    return isinstance(exc.orig, LockNotAvailable | QueryCanceled)


@dataclass
class Service:
    """What the routes share: resources built once at start-up (the composition root)."""

    resources: Resources
    _loop_sessions: sessionmaker[Session] | None = field(default=None, repr=False)

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

    @contextmanager
    def loop_statements(self) -> Iterator[Session]:
        """single_statements on the event loop's own connection. A route that uses it runs from
        start to end without awaiting, so one connection per process is all it ever holds."""
        if self._loop_sessions is None:
            engine = make_engine(
                self.resources.settings.resolved_database_url, pool_size=1, max_overflow=0, options=LOOP_OPTIONS
            )
            self._loop_sessions = make_sessionmaker(engine)
        with single_statements(self._loop_sessions) as session:
            yield session

    def close(self) -> None:
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
