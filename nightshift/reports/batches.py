"""Batches as the faces and flows ask for them: one that must exist, the open ones, a status table."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from nightshift.platform.errors import NightshiftError
from nightshift.platform.models import Batch
from nightshift.reports.status import batch_statuses, open_batch_ids


def require_batch(session: Session, batch_id: int) -> None:
    """Refuse, in one line, a batch id that does not exist."""
    if session.get(Batch, batch_id) is None:
        raise NightshiftError(f"unknown batch {batch_id}")


def open_batches(sessions: sessionmaker[Session]) -> list[int]:
    """The ids of batches not yet delivered or failed, oldest first (what the nightly run advances)."""
    with sessions() as session:
        return open_batch_ids(session)


def status_table(sessions: sessionmaker[Session]) -> list[dict[str, Any]]:
    """Every batch's status as table rows (an artifact's), its counts as text."""
    with sessions() as session:
        return [
            s.as_dict() | {"items": str(s.items), "assignments": str(s.assignments)} for s in batch_statuses(session)
        ]
