"""Clients and projects looked up by the names operators and callers use."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightshift.platform.errors import NightshiftError
from nightshift.platform.models import Client, Project


def client_by_slug(session: Session, slug: str) -> Client:
    """The client with this slug, or one line saying there is none."""
    client = session.scalars(select(Client).where(Client.slug == slug)).first()
    if client is None:
        raise NightshiftError(f"unknown client {slug}")
    return client


def client_slug(session: Session, client_id: int) -> str:
    """The slug of a client known to exist (an authenticated caller)."""
    return session.get_one(Client, client_id).slug


def project_id_by_slug(session: Session, slug: str) -> int:
    """The id of the project with this slug, or one line saying there is none."""
    project_id = session.scalar(select(Project.id).where(Project.slug == slug))
    if project_id is None:
        raise NightshiftError(f"no project {slug!r}")
    return project_id
