"""Set-based writes that work the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Insert, Row
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from nightshift.models import Base

# SQLite caps bound parameters per statement; keep each multi-row INSERT under it.
_SQLITE_MAX_PARAMS = 30_000


def _statements(
    session: Session, model: type[Base], rows: Sequence[dict[str, Any]], conflict_columns: list[str]
) -> Iterator[Insert]:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    per_statement = max(1, _SQLITE_MAX_PARAMS // max(1, len(rows[0]))) if dialect == "sqlite" else 5_000
    for start in range(0, len(rows), per_statement):
        part = list(rows[start : start + per_statement])
        yield insert(model).values(part).on_conflict_do_nothing(index_elements=conflict_columns)


def insert_ignoring_conflicts(
    session: Session, model: type[Base], rows: Sequence[dict[str, Any]], conflict_columns: list[str]
) -> int:
    """INSERT … ON CONFLICT DO NOTHING in multi-row statements; returns how many rows were new."""
    if not rows:
        return 0
    # rowcount is -1 for these statements under psycopg 3: count what RETURNING gives back instead.
    key = next(iter(model.__mapper__.primary_key))
    return sum(
        len(session.execute(stmt.returning(key)).all())
        for stmt in _statements(session, model, rows, conflict_columns)
    )


def insert_returning_new(
    session: Session,
    model: type[Base],
    rows: Sequence[dict[str, Any]],
    conflict_columns: list[str],
    returning: tuple[str, ...],
) -> list[Row[Any]]:
    """Like insert_ignoring_conflicts, but returns the chosen columns of the rows actually inserted."""
    if not rows:
        return []
    columns = model.__table__.c
    inserted: list[Row[Any]] = []
    for stmt in _statements(session, model, rows, conflict_columns):
        inserted.extend(session.execute(stmt.returning(*(columns[name] for name in returning))).all())
    return inserted
