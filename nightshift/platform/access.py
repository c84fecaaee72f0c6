"""The access log: who read which item's content, written where the content is read, and exported
for an audit. It holds ids, never content, so a retention purge leaves it whole."""

from __future__ import annotations

import csv
import datetime as dt
import getpass
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from nightshift.platform import pseudonyms
from nightshift.platform.models import AccessLog, Batch, Client, Item, Project

Actor = Literal["expert", "ops", "client"]
COLUMNS = ("at", "actor_kind", "actor", "action", "via", "batch_id", "item_id", "external_id", "assignment_id")
# Rows read per round trip while exporting: the file is written as they come.
EXPORT_CHUNK = 5_000


def record(
    session: Session,
    actor_kind: Actor,
    actor: str,
    action: str,
    via: str,
    *,
    item_id: int | None = None,
    batch_id: int | None = None,
    assignment_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.execute(
        insert(AccessLog).values(
            actor_kind=actor_kind,
            actor=actor[:100],
            action=action,
            via=via,
            item_id=item_id,
            batch_id=batch_id,
            assignment_id=assignment_id,
            detail=detail,
        )
    )


def ops_account() -> str:
    """Who ran an ops command: the operating-system account, as far as it can be told."""
    try:
        return getpass.getuser()[:90]
    except (KeyError, OSError):
        return "unknown"


@dataclass(frozen=True)
class Scope:
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    item_id: int | None = None
    batch_id: int | None = None
    # For a client's auditors: only its batches' rows, and its experts as the aliases its records use.
    client: str | None = None


def entries(session: Session, scope: Scope) -> Iterator[dict[str, Any]]:
    """The log's rows in time order, with each item's external id; experts by alias for a client."""
    query = (
        select(AccessLog, Item.external_id, Project.client_id, Client.slug)
        .outerjoin(Item, Item.id == AccessLog.item_id)
        .outerjoin(Batch, Batch.id == AccessLog.batch_id)
        .outerjoin(Project, Project.id == Batch.project_id)
        .outerjoin(Client, Client.id == Project.client_id)
        .order_by(AccessLog.id)
    )
    if scope.since is not None:
        query = query.where(AccessLog.at >= scope.since)
    if scope.until is not None:
        query = query.where(AccessLog.at < scope.until)
    if scope.item_id is not None:
        query = query.where(AccessLog.item_id == scope.item_id)
    if scope.batch_id is not None:
        query = query.where(AccessLog.batch_id == scope.batch_id)
    if scope.client is not None:
        query = query.where(Client.slug == scope.client)
    for entry, external_id, client_id, _ in session.execute(query.execution_options(yield_per=EXPORT_CHUNK)):
        actor = entry.actor
        if scope.client is not None and entry.actor_kind == "expert":
            actor = pseudonyms.for_client(client_id, int(actor))
        elif scope.client is not None and entry.actor_kind == "ops":
            actor = "ops"  # the account's name is Nightshift's own business
        yield {
            "at": entry.at.isoformat(),
            "actor_kind": entry.actor_kind,
            "actor": actor,
            "action": entry.action,
            "via": entry.via,
            "batch_id": entry.batch_id,
            "item_id": entry.item_id,
            "external_id": external_id,
            "assignment_id": entry.assignment_id,
        }


def export_csv(session: Session, scope: Scope, path: Path) -> int:
    """Write the scope's rows to a CSV file; how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        writer.writeheader()
        for row in entries(session, scope):
            writer.writerow(row)
            count += 1
    return count
