"""The client API: send batches, follow them, list deliveries, ask for a redelivery."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, UploadFile
from pydantic import BaseModel, Field

from app.web import Credentials, Id, ServiceDep, principal
from nightshift import client_access
from nightshift.errors import NightshiftError
from nightshift.models import Client
from nightshift.sources import fetch
from nightshift.webhooks import resolve_target

router = APIRouter(prefix="/api/client", tags=["client"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Not one of your projects or batches."}}
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class ProjectOut(BaseModel):
    slug: str
    name: str
    spec_version: int


class BatchOut(BaseModel):
    batch_id: int
    project: str
    status: str
    items: dict[str, int]
    progress: float = Field(description="Share of items passed or delivered.")
    in_progress: int
    gates: dict[str, str]
    mean_agreement: float | None
    deadline: str | None
    projected_finish: str | None
    at_risk: bool


class IngestedFile(BaseModel):
    batch_id: int
    new_batch: bool
    read: int
    accepted: int
    duplicates: int
    conflicts: int
    quarantined: int
    quarantined_by_reason: dict[str, int]


class FromUrl(BaseModel):
    url: str = Field(max_length=2000, pattern=r"^https?://", description="Where Nightshift fetches the file.")
    format: str = Field(default="auto", pattern=r"^(auto|jsonl|csv|parquet)$")


class DeliveryOut(BaseModel):
    version: int
    status: str
    reason: str
    records: int
    pages: int
    created_at: str
    manifest: dict[str, Any]


class RedeliveryIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class Accepted(BaseModel):
    batch_id: int
    detail: str


@router.get("/projects")
def list_projects(svc: ServiceDep, credentials: Credentials) -> list[ProjectOut]:
    with svc.transaction() as session:
        me = principal(session, credentials, "client")
        return [ProjectOut(**p) for p in client_access.projects(session, me.id)]


@router.get("/batches")
def list_batches(svc: ServiceDep, credentials: Credentials) -> list[BatchOut]:
    """Every batch of yours, with its status and progress."""
    with svc.transaction() as session:
        me = principal(session, credentials, "client")
        return [BatchOut(**b) for b in client_access.batch_progress(session, me.id)]


@router.get("/batches/{batch_id}", responses=NOT_FOUND)
def get_batch(batch_id: Id, svc: ServiceDep, credentials: Credentials) -> BatchOut:
    with svc.transaction() as session:
        me = principal(session, credentials, "client")
        return BatchOut(**client_access.one_batch(session, me.id, batch_id))


@router.get("/batches/{batch_id}/deliveries", responses=NOT_FOUND)
def list_deliveries(batch_id: Id, svc: ServiceDep, credentials: Credentials) -> list[DeliveryOut]:
    """Every delivery version of the batch, newest first, with its manifest (files and checksums)."""
    with svc.transaction() as session:
        me = principal(session, credentials, "client")
        return [DeliveryOut(**d) for d in client_access.deliveries(session, me.id, batch_id)]


@router.post("/batches/{batch_id}/redeliveries", status_code=202, responses=NOT_FOUND)
def ask_redelivery(batch_id: Id, body: RedeliveryIn, svc: ServiceDep, credentials: Credentials) -> Accepted:
    """The next delivery run sends the batch again as a new version (event batch.redelivered)."""
    with svc.transaction() as session:
        me = principal(session, credentials, "client")
        slug = session.get_one(Client, me.id).slug
        client_access.ask_redelivery(session, me.id, slug, batch_id, body.reason)
    return Accepted(batch_id=batch_id, detail="redelivery requested: the next delivery run sends a new version")


def _caller(svc: ServiceDep, credentials: Credentials, project: str) -> str:
    with svc.transaction() as session:
        me = principal(session, credentials, "client")
        client_access.project_slug(session, me.id, project)
        return session.get_one(Client, me.id).slug


def _ingest(project: str, path: Path, file_format: str) -> IngestedFile:
    from flows.ingest import IngestParams, ingest_flow

    result = ingest_flow(IngestParams(project=project, source=str(path), format=file_format))  # type: ignore[arg-type]
    f = result.files[0]
    return IngestedFile(**f.model_dump(include=set(IngestedFile.model_fields)))


@router.post("/projects/{project}/batches/upload", status_code=201, responses=NOT_FOUND)
def upload_batch(project: str, file: UploadFile, svc: ServiceDep, credentials: Credentials) -> IngestedFile:
    """Send a batch as a file (JSONL, CSV or Parquet, optionally .gz); it is ingested before this answers.
    The same file sent again is the same batch and adds nothing."""
    client = _caller(svc, credentials, project)
    name = SAFE_NAME.sub("_", Path(file.filename or "upload.jsonl").name)[-120:]
    folder = svc.resources.settings.home.resolve() / "uploads" / client
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    partial = folder / f".{name}.part"
    with partial.open("wb") as out:
        # Streamed in blocks: memory stays flat however large the upload.
        while block := file.file.read(1 << 20):
            digest.update(block)
            out.write(block)
    target = folder / f"{digest.hexdigest()[:16]}-{name}"
    partial.replace(target)
    return _ingest(project, target, "auto")


@router.post("/projects/{project}/batches/from-url", status_code=201, responses=NOT_FOUND)
def batch_from_url(project: str, body: FromUrl, svc: ServiceDep, credentials: Credentials) -> IngestedFile:
    """Send a batch by URL: Nightshift fetches it (public addresses only) and ingests it."""
    client = _caller(svc, credentials, project)
    allowlist = svc.resources.settings.webhook_http_allowlist
    try:
        resolve_target(body.url, allowlist)
    except NightshiftError as exc:
        raise NightshiftError(str(exc).replace("webhook URL", "batch URL")) from None
    folder = svc.resources.settings.home.resolve() / "uploads" / client
    path = fetch(body.url, folder, follow_redirects=False)
    return _ingest(project, path, body.format)
