"""Set-based writes that work the same on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from psycopg.rows import namedtuple_row
from psycopg.types.json import Jsonb
from sqlalchemy import JSON, Insert, Row, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from nightshift.models import Base


def _insert_ignoring(
    session: Session, model: type[Base], conflict_columns: list[str]
) -> tuple[Insert, Table]:
    table = model.__table__
    assert isinstance(table, Table)
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing(index_elements=conflict_columns), table


def insert_ignoring_conflicts(
    session: Session, model: type[Base], rows: Sequence[dict[str, Any]], conflict_columns: list[str]
) -> int:
    """INSERT … ON CONFLICT DO NOTHING for many rows; returns how many were new.

    One statement executed with many parameter sets: SQLAlchemy compiles it once and sends
    batched multi-row VALUES ("insertmanyvalues"), far cheaper than compiling one huge statement.
    """
    if not rows:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        return len(_copy_insert(session, model, rows, conflict_columns, ()))
    stmt, table = _insert_ignoring(session, model, conflict_columns)
    # rowcount is unreliable for batched statements under psycopg 3: count what RETURNING gives back.
    key = next(iter(table.primary_key.columns))
    return len(session.connection().execute(stmt.returning(key), list(rows)).all())


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
    if session.get_bind().dialect.name == "postgresql":
        return _copy_insert(session, model, rows, conflict_columns, returning)
    stmt, table = _insert_ignoring(session, model, conflict_columns)
    columns = [table.c[name] for name in returning]
    return list(session.connection().execute(stmt.returning(*columns), list(rows)).all())


_staging_names = itertools.count()


def _copy_insert(
    session: Session,
    model: type[Base],
    rows: Sequence[dict[str, Any]],
    conflict_columns: list[str],
    returning: tuple[str, ...],
) -> list[Row[Any]]:
    """PostgreSQL: COPY into a staging table, then one INSERT … SELECT … ON CONFLICT DO NOTHING."""
    table = model.__table__
    assert isinstance(table, Table)
    names = list(rows[0])
    is_json = [isinstance(table.c[name].type, JSON) for name in names]
    staging = f"staging_{table.name}_{next(_staging_names)}"
    quoted = ", ".join(f'"{name}"' for name in names)
    raw = session.connection().connection.driver_connection
    assert raw is not None
    with raw.cursor(row_factory=namedtuple_row) as cursor:
        # Same column types as the target, none of its constraints; gone at commit.
        cursor.execute(
            f'CREATE TEMP TABLE "{staging}" ON COMMIT DROP AS '
            f'SELECT {quoted} FROM "{table.name}" WITH NO DATA'
        )
        with cursor.copy(f'COPY "{staging}" ({quoted}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(
                    [
                        Jsonb(row[name]) if json and row[name] is not None else row[name]
                        for name, json in zip(names, is_json, strict=True)
                    ]
                )
        key = ", ".join(f'"{c}"' for c in conflict_columns)
        back = ", ".join(f'"{c}"' for c in returning) or next(iter(table.primary_key.columns)).name
        cursor.execute(
            f'INSERT INTO "{table.name}" ({quoted}) SELECT {quoted} FROM "{staging}" '
            f"ON CONFLICT ({key}) DO NOTHING RETURNING {back}"
        )
        result: list[Any] = cursor.fetchall()
        cursor.execute(f'DROP TABLE "{staging}"')
    # Named tuples: callers read columns by name, as with SQLAlchemy rows.
    return result
