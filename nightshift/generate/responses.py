"""A batch's model responses in the database: which items still need one, and storing them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, func, literal_column, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from nightshift.platform.models import Item, ModelResponse
from nightshift.platform.sql import copy_if_all_new, is_postgres


@dataclass(frozen=True)
class Pending:
    item_id: int
    take: int
    payload: dict[str, Any]


def item_ranges(session: Session, batch_id: int, size: int) -> list[tuple[int, int]]:
    """The batch's item ids cut into ranges of `size` items: a chunk is a range, so a re-run's
    chunks are the same ones and each reads only its own rows."""
    numbered = select(
        Item.id.label("id"), ((func.row_number().over(order_by=Item.id) - 1) // size).label("part")
    ).where(Item.batch_id == batch_id)
    parts = numbered.subquery()
    query = select(func.min(parts.c.id), func.max(parts.c.id)).group_by(parts.c.part).order_by(func.min(parts.c.id))
    return [(int(lo), int(hi)) for lo, hi in session.execute(query)]


def pending(session: Session, batch_id: int, lo: int, hi: int, key: str, force: bool) -> list[Pending]:
    """Items of the range that need asking under this key, with the take to store: the next one
    when forced; otherwise items never asked (take 1) and those whose latest take failed."""
    latest = (
        select(ModelResponse.item_id, func.max(ModelResponse.take).label("take"))
        .where(ModelResponse.model_key == key, ModelResponse.item_id.between(lo, hi))
        .group_by(ModelResponse.item_id)
        .subquery()
    )
    last_sub = (
        select(ModelResponse.item_id, ModelResponse.take, ModelResponse.status)
        .where(ModelResponse.model_key == key, ModelResponse.item_id.between(lo, hi))
        .subquery()
    )
    query = (
        select(Item.id, Item.payload, latest.c.take, last_sub.c.status)
        .outerjoin(latest, latest.c.item_id == Item.id)
        .outerjoin(last_sub, and_(last_sub.c.item_id == Item.id, last_sub.c.take == latest.c.take))
        .where(Item.batch_id == batch_id, Item.id.between(lo, hi))
        .order_by(Item.id)
    )
    found = []
    for item_id, payload, take, status in session.execute(query):
        if force:
            found.append(Pending(item_id, (take or 0) + 1, payload))
        elif take is None:
            found.append(Pending(item_id, 1, payload))
        elif status == "failed":
            found.append(Pending(item_id, take, payload))
    return found


def store(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Each row a response or a failure. A take already answered stays as it is; a failed one is
    replaced, its attempts added up."""
    if not rows:
        return
    # Usually every row is new (a first generation): PostgreSQL takes them by COPY, a fraction of
    # the upsert's cost per row; a row already there (a re-run, a forced take) makes it upsert.
    if is_postgres(session) and copy_if_all_new(session, ModelResponse, rows):
        return
    insert = postgresql.insert if is_postgres(session) else sqlite.insert
    table = ModelResponse.__table__
    assert isinstance(table, Table)
    # The table, not the ORM entity, on the session's connection: the ORM's bulk path costs more
    # per row than the statement, and answers arrive by the hundred a second.
    stmt = insert(table)
    excluded = stmt.excluded
    replaced = {
        name: getattr(excluded, name)
        for name in (
            "status",
            "content",
            "finish_reason",
            "prompt_tokens",
            "completion_tokens",
            "latency_ms",
            "error",
            "endpoint",
            "model",
            "parameters",
        )
    }
    stmt = stmt.on_conflict_do_update(
        index_elements=["item_id", "model_key", "take"],
        set_={
            **replaced,
            "attempts": table.c.attempts + excluded.attempts,
            # A literal: SQLite's rendering of now() takes parameters an executemany cannot carry.
            "updated_at": literal_column("CURRENT_TIMESTAMP"),
        },
        where=table.c.status == literal_column("'failed'"),
    )
    session.connection().execute(stmt, list(rows))


def counts(session: Session, batch_id: int) -> dict[tuple[str, str], int]:
    """(endpoint, status) → responses of the batch, latest take of each item and key."""
    query = text(
        """
        SELECT r.endpoint, r.status, count(*)
        FROM model_responses r JOIN items i ON i.id = r.item_id
        WHERE i.batch_id = :batch AND r.take = (
            SELECT max(l.take) FROM model_responses l WHERE l.item_id = r.item_id AND l.model_key = r.model_key
        )
        GROUP BY r.endpoint, r.status
        """
    )
    return {(e, s): int(n) for e, s, n in session.execute(query, {"batch": batch_id})}


def answered_by_every_endpoint(item_id: Any, endpoints: list[str]) -> ColumnElement[bool]:
    """A condition on an item id: every one of these endpoints has answered it (a latest take of
    any model key will do: a spec change asks again, and until then the old answer stands)."""
    return and_(
        *(
            select(ModelResponse.id)
            .where(ModelResponse.item_id == item_id, ModelResponse.endpoint == name, ModelResponse.status == "ok")
            .exists()
            for name in endpoints
        )
    )


def response_label(place: int) -> str:
    """How experts see the answer of the endpoint at this place in name order: A, B, …"""
    return chr(ord("A") + place)


@dataclass(frozen=True)
class Shown:
    """A model answer as experts see it: labelled by its endpoint's place among the project's
    endpoints in name order, so "Response A" is the same model for every item and expert."""

    label: str
    response_id: int
    endpoint: str
    model: str
    content: str


def answers_of(session: Session, item_id: int, endpoints: Sequence[str]) -> list[Shown]:
    """The item's model answers an expert works with: each endpoint's latest answer."""
    return answers_in(session, item_id, item_id, endpoints).get(item_id, [])


def _latest(lo: int, hi: int, endpoints: Sequence[str]) -> Any:
    """The id of each endpoint's latest answer to each item of [lo, hi]."""
    return (
        select(func.max(ModelResponse.id).label("id"))
        .where(
            ModelResponse.item_id.between(lo, hi),
            ModelResponse.status == "ok",
            ModelResponse.endpoint.in_(list(endpoints)),
        )
        .group_by(ModelResponse.item_id, ModelResponse.endpoint)
        .subquery()
    )


def answers_in(session: Session, lo: int, hi: int, endpoints: Sequence[str]) -> dict[int, list[Shown]]:
    """answers_of for every item of [lo, hi] at once. An endpoint that has not answered an item
    leaves its label out, never shifts the next one's."""
    labels = {name: response_label(k) for k, name in enumerate(sorted(endpoints))}
    if not labels:
        return {}
    latest = _latest(lo, hi, list(labels))
    query = (
        select(
            ModelResponse.item_id, ModelResponse.id, ModelResponse.endpoint, ModelResponse.model, ModelResponse.content
        )
        .join(latest, latest.c.id == ModelResponse.id)
        .order_by(ModelResponse.item_id, ModelResponse.endpoint)
    )
    shown: dict[int, list[Shown]] = {}
    for item_id, rid, endpoint, model, content in session.execute(query):
        shown.setdefault(item_id, []).append(Shown(labels[endpoint], rid, endpoint, model, content or ""))
    return shown


def lengths_in(session: Session, lo: int, hi: int, endpoints: Sequence[str]) -> dict[int, dict[str, int]]:
    """The length of each answer answers_in would show, by item and label, without the texts."""
    labels = {name: response_label(k) for k, name in enumerate(sorted(endpoints))}
    if not labels:
        return {}
    latest = _latest(lo, hi, list(labels))
    query = select(ModelResponse.item_id, ModelResponse.endpoint, func.length(ModelResponse.content)).join(
        latest, latest.c.id == ModelResponse.id
    )
    lengths: dict[int, dict[str, int]] = {}
    for item_id, endpoint, length in session.execute(query):
        lengths.setdefault(item_id, {})[labels[endpoint]] = int(length or 0)
    return lengths
