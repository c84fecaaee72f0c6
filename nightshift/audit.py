"""The audit log of state changes: who moved what from which status to which."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from nightshift.models import AuditLog


def record_transition(
    session: Session,
    entity: str,
    entity_id: int,
    from_status: str | None,
    to_status: str,
    actor: str,
    detail: dict[str, Any] | None = None,
) -> None:
    session.execute(
        insert(AuditLog).values(
            entity=entity,
            entity_id=entity_id,
            from_status=from_status,
            to_status=to_status,
            actor=actor,
            detail=detail,
        )
    )
