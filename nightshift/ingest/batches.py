"""The batch a client file opens, found again by its checksum, and marked once fully read."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from nightshift.platform.audit import record_transition
from nightshift.platform.errors import SourceError
from nightshift.platform.models import Batch, utcnow
from nightshift.platform.sql import insert_ignoring_conflicts
from nightshift.projects.registry import get_project, project_spec


def file_checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_source(path: Path) -> Path:
    if not path.exists():
        raise SourceError(f"file not found: {path}")
    if not path.is_file():
        raise SourceError(f"not a file: {path}")
    return path


@dataclass(frozen=True)
class OpenedBatch:
    batch_id: int
    created: bool
    completed: bool
    # The project's models answer its items before dispatch (its spec has a generation section).
    generates: bool = False


def open_batch(session: Session, project_slug: str, path: Path, fmt: str = "jsonl") -> OpenedBatch:
    """The batch for this file: the existing one if the same bytes were ingested before."""
    project = get_project(session, project_slug)
    checksum = file_checksum(check_source(path))
    body = project_spec(session, project.id).project
    values = {
        "project_id": project.id,
        "source": str(path),
        "source_checksum": checksum,
        "status": "ingested",
        "spec_version": project.spec_version,
        "source_format": fmt,
        # The client's turnaround runs from when the batch arrives; ops hear when it is at risk.
        "deadline_at": utcnow() + dt.timedelta(hours=body.turnaround_hours),
    }
    created = insert_ignoring_conflicts(session, Batch, [values], ["project_id", "source_checksum"]) > 0
    batch = session.scalars(
        select(Batch).where(Batch.project_id == project.id, Batch.source_checksum == checksum)
    ).one()
    if created:
        record_transition(session, "batch", batch.id, None, "ingested", "ingest", {"source": str(path)})
    return OpenedBatch(batch.id, created, batch.ingest_completed_at is not None, body.generation is not None)


def mark_ingest_complete(session: Session, batch_id: int) -> None:
    session.execute(update(Batch).where(Batch.id == batch_id).values(ingest_completed_at=utcnow()))
