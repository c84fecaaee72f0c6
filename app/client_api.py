"""The client API: send batches, follow them, list deliveries, ask for a redelivery."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, field_validator

from app.deps import Credentials, Id, ServiceDep, principal
from app.uploads import UPLOAD_BODY, receive_file
from nightshift.delivery import acceptance
from nightshift.ingest.sources import fetch
from nightshift.platform.bounds import text_problem
from nightshift.platform.models import utcnow
from nightshift.projects.clients import client_slug
from nightshift.reports import client_view as client_access

router = APIRouter(prefix="/api/client", tags=["client"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Not one of your projects or batches."}}


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
    personal_data: dict[str, int] = Field(
        default_factory=dict, description="Personal data found, by kind: what the project's privacy policy acted on."
    )


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


class VerdictIn(BaseModel):
    external_id: str = Field(min_length=1, max_length=200, description="The record's external_id.")
    verdict: Literal["accept", "reject"]
    reason: str | None = Field(default=None, max_length=2000, description="Why it is wrong: needed to reject.")

    @field_validator("external_id", "reason")
    @classmethod
    def _storable(cls, value: str | None) -> str | None:
        # A NUL or a lone surrogate cannot be stored or compared in PostgreSQL: a 422, never a 500.
        if value is not None and (problem := text_problem(value)) is not None:
            raise ValueError(problem)
        return value


class VerdictsIn(BaseModel):
    verdicts: list[VerdictIn] = Field(min_length=1, max_length=1000)


class VerdictsOut(BaseModel):
    version: int = Field(description="The delivered version the verdicts are on.")
    accepted: int
    rejected: int = Field(description="Sent to adjudication; the next version carries them, reason included.")
    already_decided: list[str] = Field(description="Records with a verdict on this version already: unchanged.")
    unknown: list[str] = Field(description="Not delivered records of this batch.")


class AcceptanceOut(BaseModel):
    version: int | None = Field(description="The latest delivered version; null: no window for this batch.")
    window_ends_at: str | None
    accepted: int
    rejected: int
    undecided: int = Field(description="Accepted when the window ends unless rejected before.")


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
        slug = client_slug(session, me.id)
        client_access.ask_redelivery(session, me.id, slug, batch_id, body.reason)
    return Accepted(batch_id=batch_id, detail="redelivery requested: the next delivery run sends a new version")


@router.post(
    "/batches/{batch_id}/verdicts",
    responses={**NOT_FOUND, 400: {"description": "No open window, the batch is being reworked, or a bad verdict."}},
)
def give_verdicts(batch_id: Id, body: VerdictsIn, svc: ServiceDep, credentials: Credentials) -> VerdictsOut:
    """Accept or reject records of the batch's latest delivered version while its window is open. A
    rejection (with its reason) sends the record to adjudication at no charge; the next delivery
    (event batch.reworked) carries it with the reason in its change log. A verdict given twice
    counts once."""
    with svc.transaction() as session:
        me = principal(session, credentials, "client")
        client_access.owned_batch(session, me.id, batch_id)
        report = acceptance.record_verdicts(
            session,
            batch_id,
            [acceptance.Verdict(v.external_id, v.verdict, v.reason) for v in body.verdicts],
            client_slug(session, me.id),
            utcnow(),
        )
    return VerdictsOut(**vars(report))


@router.get("/batches/{batch_id}/acceptance", responses=NOT_FOUND)
def get_acceptance(batch_id: Id, svc: ServiceDep, credentials: Credentials) -> AcceptanceOut:
    """The latest delivered version's verdicts so far and when its window ends."""
    with svc.transaction() as session:
        me = principal(session, credentials, "client")
        client_access.owned_batch(session, me.id, batch_id)
        return AcceptanceOut(**acceptance.summary(session, batch_id))


def _caller(svc: ServiceDep, credentials: Credentials, project: str) -> str:
    with svc.transaction() as session:
        me = principal(session, credentials, "client")
        client_access.project_slug(session, me.id, project)
        return client_slug(session, me.id)


def _ingest(project: str, path: Path, file_format: str) -> IngestedFile:
    from flows.ingest import IngestParams, ingest_flow

    result = ingest_flow(IngestParams(project=project, source=str(path), format=file_format))  # type: ignore[arg-type]
    f = result.files[0]
    return IngestedFile(**f.model_dump(include=set(IngestedFile.model_fields)))


@router.post(
    "/projects/{project}/batches/upload",
    status_code=201,
    responses={**NOT_FOUND, 413: {"description": "Larger than the upload limit."}},
    openapi_extra={"requestBody": UPLOAD_BODY},
)
async def upload_batch(project: str, request: Request, svc: ServiceDep, credentials: Credentials) -> IngestedFile:
    """Send a batch as a file (JSONL, CSV or Parquet, optionally .gz) in a multipart form's `file`
    part; it is ingested before this answers. The same file sent again is the same batch and adds
    nothing. The caller is checked before the body is read; the body is streamed to disk and
    refused (413) past the upload limit."""
    client = await run_in_threadpool(_caller, svc, credentials, project)
    folder = svc.resources.settings.home.resolve() / "uploads" / client
    target = await receive_file(request, folder, svc.resources.settings.max_upload_bytes)
    return await run_in_threadpool(_ingest, project, target, "auto")


@router.post("/projects/{project}/batches/from-url", status_code=201, responses=NOT_FOUND)
def batch_from_url(project: str, body: FromUrl, svc: ServiceDep, credentials: Credentials) -> IngestedFile:
    """Send a batch by URL: Nightshift fetches it from a public address (redirects are followed
    only to public addresses) and ingests it. Every refused or failed fetch gets the same answer."""
    client = _caller(svc, credentials, project)
    settings = svc.resources.settings
    folder = settings.home.resolve() / "uploads" / client
    path = fetch(
        body.url,
        folder,
        settings.source_allowlist,
        settings.source_timeout_seconds,
        settings.max_upload_bytes,
        svc.resources.resolver,
    )
    return _ingest(project, path, body.format)
