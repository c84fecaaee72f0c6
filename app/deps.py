"""What the web routers share: the service's resources, the caller's identity, request bounds.

Routers (client_api, expert_api, pages) import this module, never app.web, which imports them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from nightshift import resources as root
from nightshift.platform.db import single_statements, transaction
from nightshift.platform.keys import Principal, authenticate
from nightshift.resources import Resources

SESSION_COOKIE = "nightshift_session"


def resources() -> Resources:
    """The process's one Resources (the composition root's), secrets resolved as the tasks do."""
    import tasks.runtime  # noqa: F401  (supplies Prefect's secret resolver to the root)

    return root.current()


@dataclass
class Service:
    """What the routes share: resources built once at start-up (the composition root)."""

    resources: Resources

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with transaction(self.resources.sessions) as session:
            yield session

    @contextmanager
    def single_statements(self) -> Iterator[Session]:
        with single_statements(self.resources.sessions) as session:
            yield session


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
