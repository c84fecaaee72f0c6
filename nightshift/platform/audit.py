"""The audit log of state changes: who moved what from which status to which."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from nightshift.platform.models import AuditLog


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


def record_transitions(
    session: Session,
    entity: str,
    entity_ids: Sequence[int],
    from_status: str | None,
    to_status: str,
    actor: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """The same transition of many entities (a gate pausing hundreds of experts): one statement,
    its rows sent together, not a round trip each."""
    if not entity_ids:
        return
    rows = [
        {"entity": entity, "entity_id": entity_id, "from_status": from_status, "to_status": to_status, "actor": actor}
        for entity_id in entity_ids
    ]
    session.execute(insert(AuditLog).values(detail=detail), rows)
