"""Clients and projects: applying a spec, and reading a project's spec back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from nightshift.platform.errors import NotFoundError
from nightshift.platform.models import Batch, Client, Item, Project, ProjectSpecVersion
from nightshift.projects.spec import ProjectBody, ProjectSpec


@dataclass(frozen=True)
class AppliedSpec:
    client_slug: str
    project_slug: str
    spec_version: int
    changed: bool


def apply_spec(session: Session, spec: ProjectSpec) -> AppliedSpec:
    """Create or update the client and project; a changed project spec gets a new version."""
    client = session.scalars(select(Client).where(Client.slug == spec.client.slug)).one_or_none()
    if client is None:
        client = Client(slug=spec.client.slug, name=spec.client.name)
        session.add(client)
    client.name = spec.client.name
    client.webhook_url = spec.client.webhook_url
    client.webhook_secret_ref = spec.client.webhook_secret.as_ref() if spec.client.webhook_secret else None
    client.slack_channel = spec.client.slack_channel
    client.retention_days = spec.client.retention_days
    client.webhook_retry_schedule = spec.client.webhook_retry_schedule
    session.flush()

    body = spec.project.model_dump(mode="json")
    spec_hash = spec.project_hash()
    project = session.scalars(select(Project).where(Project.slug == spec.project.slug)).one_or_none()
    changed = True
    if project is None:
        project = Project(
            client_id=client.id,
            slug=spec.project.slug,
            name=spec.project.name,
            spec=body,
            spec_version=1,
            spec_hash=spec_hash,
        )
        session.add(project)
    elif project.spec_hash != spec_hash:
        project.spec, project.spec_hash = body, spec_hash
        project.spec_version += 1
        project.name = spec.project.name
    else:
        changed = False
    project.client_id = client.id
    session.flush()
    if changed:
        session.add(
            ProjectSpecVersion(project_id=project.id, version=project.spec_version, spec=body, spec_hash=spec_hash)
        )
    return AppliedSpec(client.slug, project.slug, project.spec_version, changed)


def get_project(session: Session, slug: str) -> Project:
    project = session.scalars(select(Project).where(Project.slug == slug)).one_or_none()
    if project is None:
        known = ", ".join(session.scalars(select(Project.slug).order_by(Project.slug))) or "none"
        raise NotFoundError(f"unknown project {slug!r} (known: {known})")
    return project


# Parsed bodies by spec hash: a spec never changes under its hash, so the hot path (every expert
# submission is checked against its project's labels) parses each version once per process.
_BODIES: dict[str, ProjectBody] = {}


def project_body(session: Session, project_id: int, spec_hash: str | None = None) -> ProjectBody:
    """The project part of the current spec, parsed once per spec version. A caller that read the
    project's spec_hash in a query of its own passes it, and no query is needed at all."""
    connection = session.connection()
    if spec_hash is None:
        spec_hash = connection.execute(_SPEC_HASH, {"project": project_id}).scalar_one()
    body = _BODIES.get(spec_hash)
    if body is None:
        # The spec (JSON) is read only when its version is new to this process; with its hash
        # again, in case it changed in between.
        spec_hash, spec = connection.execute(_SPEC, {"project": project_id}).one()
        body = _BODIES[spec_hash] = ProjectBody.model_validate(spec)
    return body


def _parsed(session: Session, spec_hash: str, spec_query: Any, params: dict[str, int]) -> ProjectBody:
    body = _BODIES.get(spec_hash)
    if body is None:
        spec_hash, spec = session.connection().execute(spec_query, params).one()
        body = _BODIES[spec_hash] = ProjectBody.model_validate(spec)
    return body


_VERSION = select(ProjectSpecVersion.spec_hash, ProjectSpecVersion.spec).where(
    ProjectSpecVersion.project_id == bindparam("project"), ProjectSpecVersion.version == bindparam("version")
)
_OF_BATCH = select(Batch.project_id, Batch.spec_version, ProjectSpecVersion.spec_hash, Project.spec_hash).join(
    ProjectSpecVersion,
    (ProjectSpecVersion.project_id == Batch.project_id) & (ProjectSpecVersion.version == Batch.spec_version),
)
_ITEM_VERSION = (
    _OF_BATCH.join(Item, Item.batch_id == Batch.id)
    .join(Project, Project.id == Batch.project_id)
    .where(Item.id == bindparam("item"))
)
_BATCH_VERSION = _OF_BATCH.join(Project, Project.id == Batch.project_id).where(Batch.id == bindparam("batch"))

# What a batch keeps of the spec version it was ingested under: what defines its answers, so work
# in flight is judged by the labels it was given. The rest (overlap, review policy, gate floors,
# pay, budgets, the models) is operations' to change and follows the current spec.
PINNED = ("instructions", "input_fields", "labels", "skill_field")
_PINNED: dict[tuple[str, str], ProjectBody] = {}


def version_body(session: Session, project_id: int, version: int, version_hash: str, current_hash: str) -> ProjectBody:
    """The spec a batch's work is done under: the current spec with the PINNED parts of the
    batch's version, for a caller that read both hashes in a query of its own."""
    key = (current_hash, version_hash)
    body = _PINNED.get(key)
    if body is None:
        current = project_body(session, project_id, current_hash)
        if version_hash == current_hash:
            body = current
        else:
            kept = _parsed(session, version_hash, _VERSION, {"project": project_id, "version": version})
            body = current.model_copy(update={name: getattr(kept, name) for name in PINNED})
        _PINNED[key] = body
    return body


def item_body(session: Session, item_id: int) -> tuple[int, ProjectBody]:
    """The item's project and the spec its work is done under (version_body of its batch)."""
    project_id, version, version_hash, current_hash = (
        session.connection().execute(_ITEM_VERSION, {"item": item_id}).one()
    )
    return project_id, version_body(session, project_id, version, version_hash, current_hash)


def batch_body(session: Session, batch_id: int) -> ProjectBody:
    """The spec a batch's work is done under (version_body)."""
    project_id, version, version_hash, current_hash = (
        session.connection().execute(_BATCH_VERSION, {"batch": batch_id}).one()
    )
    return version_body(session, project_id, version, version_hash, current_hash)


_SPEC_HASH = select(Project.spec_hash).where(Project.id == bindparam("project"))
_SPEC = select(Project.spec_hash, Project.spec).where(Project.id == bindparam("project"))


def project_spec(session: Session, project_id: int) -> ProjectSpec:
    """The project's current spec, with its client part rebuilt from the clients table."""
    project = session.get_one(Project, project_id)
    client = session.get_one(Client, project.client_id)
    secret = None
    if client.webhook_secret_ref:
        kind, _, name = client.webhook_secret_ref.partition(":")
        secret = {"env": name} if kind == "env" else {"prefect_secret": name}
    return ProjectSpec.model_validate(
        {
            "client": {
                "slug": client.slug,
                "name": client.name,
                "webhook_url": client.webhook_url,
                "webhook_secret": secret,
                "slack_channel": client.slack_channel,
            },
            "project": project.spec,
        }
    )
