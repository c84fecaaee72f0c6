"""What a client may see and ask for: only its own projects, batches and deliveries.

Anything of another client is answered exactly as if it did not exist (NotFoundError), so ids
cannot be probed. Costs and expert identities stay inside Nightshift.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightshift.delivery.outbox import request_redelivery
from nightshift.platform.errors import NotFoundError
from nightshift.platform.models import Batch, Delivery, Project
from nightshift.reports.status import batch_statuses

DONE_ITEMS = ("passed", "delivered")


def projects(session: Session, client_id: int) -> list[dict[str, Any]]:
    return [
        {"slug": slug, "name": name, "spec_version": version}
        for slug, name, version in session.execute(
            select(Project.slug, Project.name, Project.spec_version)
            .where(Project.client_id == client_id)
            .order_by(Project.slug)
        )
    ]


def project_slug(session: Session, client_id: int, slug: str) -> str:
    found = session.scalar(select(Project.slug).where(Project.client_id == client_id, Project.slug == slug))
    if found is None:
        raise NotFoundError(f"no project {slug!r}")
    return found


def _batch_ids(session: Session, client_id: int, project: str | None = None) -> list[int]:
    query = select(Batch.id).join(Project, Project.id == Batch.project_id).where(Project.client_id == client_id)
    if project is not None:
        query = query.where(Project.slug == project)
    return list(session.scalars(query.order_by(Batch.id)))


def owned_batch(session: Session, client_id: int, batch_id: int) -> int:
    found = session.scalar(
        select(Batch.id)
        .join(Project, Project.id == Batch.project_id)
        .where(Batch.id == batch_id, Project.client_id == client_id)
    )
    if found is None:
        raise NotFoundError(f"no batch {batch_id}")
    return found


def batch_progress(session: Session, client_id: int, batch_ids: list[int] | None = None) -> list[dict[str, Any]]:
    """Status and progress of the client's batches (all, or the ones named that are theirs)."""
    owned = _batch_ids(session, client_id)
    ids = sorted(set(batch_ids) & set(owned)) if batch_ids is not None else owned
    if not ids:
        return []
    out = []
    for status in batch_statuses(session, ids):
        # Gold items are ours, not the client's: they are in the counts but never delivered.
        total = sum(status.items.values())
        done = sum(status.items.get(k, 0) for k in DONE_ITEMS)
        out.append(
            {
                "batch_id": status.batch_id,
                "project": status.project,
                "status": status.status,
                "items": status.items,
                "progress": round(done / total, 4) if total else 0.0,
                "in_progress": total - done - status.items.get("unassignable", 0),
                "gates": status.gates,
                "mean_agreement": status.mean_agreement,
                "deadline": status.deadline,
                "projected_finish": status.projected_finish,
                "at_risk": status.at_risk,
            }
        )
    return out


def one_batch(session: Session, client_id: int, batch_id: int) -> dict[str, Any]:
    owned_batch(session, client_id, batch_id)
    return batch_progress(session, client_id, [batch_id])[0]


def deliveries(session: Session, client_id: int, batch_id: int) -> list[dict[str, Any]]:
    """Every delivery version of the batch, newest first, with its manifest (files, counts, gates)."""
    owned_batch(session, client_id, batch_id)
    return [
        {
            "version": d.version,
            "status": d.status,
            "reason": d.reason,
            "records": d.record_count,
            "pages": d.page_count,
            "created_at": d.created_at.isoformat(),
            "manifest": d.manifest,
        }
        for d in session.scalars(
            select(Delivery).where(Delivery.batch_id == batch_id).order_by(Delivery.version.desc())
        )
    ]


def ask_redelivery(session: Session, client_id: int, client_slug: str, batch_id: int, reason: str) -> None:
    """The next delivery run sends the batch again as a new version, saying why."""
    owned_batch(session, client_id, batch_id)
    request_redelivery(session, batch_id, reason, f"client:{client_slug}")
