"""Set-based writes that work the same on SQLite and PostgreSQL."""

from __future__ import annotations

import functools
import itertools
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVarTuple

import orjson
import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import namedtuple_row
from sqlalchemy import JSON, ColumnElement, Result, Row, Select, Table, any_, bindparam, text, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from nightshift.platform.models import Base

_Columns = TypeVarTuple("_Columns")


# What the database (or the driver, encoding a value for it) says of a value it cannot take:
# a row's fault, never the connection's. Its messages quote the value: never pass them on.
_ROW_DATA_ERRORS = (pg_errors.DataError, pg_errors.ProgramLimitExceeded, UnicodeEncodeError)


def is_row_data_error(exc: BaseException) -> bool:
    """The exception, or the driver's error SQLAlchemy wraps, is about a value, not the database."""
    orig = exc.orig if isinstance(exc, sa_exc.StatementError) else exc
    return isinstance(orig, _ROW_DATA_ERRORS)


def data_error_name(exc: BaseException) -> str:
    """The error's class (its SQLSTATE's name), never its message, which quotes the value."""
    orig = exc.orig if isinstance(exc, sa_exc.StatementError) else exc
    if isinstance(orig, psycopg.Error) and orig.sqlstate:
        return f"{type(orig).__name__} ({orig.sqlstate})"
    return type(orig).__name__


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def plain_rows(session: Session, statement: Select[*_Columns]) -> Result[*_Columns]:
    """Run a read of plain columns on the session's connection, past the ORM's row handling, which
    costs more than the query on reads of a whole batch. Pending ORM changes are flushed first, as
    session.execute would."""
    session.flush()
    return session.connection().execute(statement)


def insert_ignoring_conflicts(
    session: Session, model: type[Base], rows: Sequence[dict[str, Any]], conflict_columns: list[str]
) -> int:
    """INSERT … ON CONFLICT DO NOTHING for many rows; returns how many were new."""
    # rowcount is unreliable for batched statements under psycopg 3: count what RETURNING gives back.
    key = next(iter(model.__mapper__.primary_key)).name
    return len(insert_returning_new(session, model, rows, conflict_columns, (key,)))


# Up to this many rows go as one multi-row INSERT on PostgreSQL; more go through COPY.
SMALL_INSERT = 20


def insert_returning_new(
    session: Session,
    model: type[Base],
    rows: Sequence[dict[str, Any]],
    conflict_columns: list[str],
    returning: tuple[str, ...],
) -> list[Row[Any]]:
    """INSERT … ON CONFLICT DO NOTHING; returns the chosen columns of the rows actually inserted.

    PostgreSQL, more than SMALL_INSERT rows: COPY into a staging table and one INSERT … SELECT.
    Otherwise one cached statement executed with the rows as parameter sets, which SQLAlchemy
    sends as batched multi-row VALUES.
    """
    if not rows:
        return []
    table = model.__table__
    assert isinstance(table, Table)
    postgres = is_postgres(session)
    if postgres and len(rows) > SMALL_INSERT:
        return _copy_insert(session, model, rows, conflict_columns, returning)
    # A few rows on PostgreSQL (an expert's one answer): a staging table would cost more than them.
    stmt = _insert_returning(table, tuple(conflict_columns), returning, postgres)
    return list(session.connection().execute(stmt, list(rows)).all())


@functools.cache
def _insert_returning(
    table: Table, conflict_columns: tuple[str, ...], returning: tuple[str, ...], postgres: bool
) -> Any:
    insert = postgresql.insert if postgres else sqlite.insert
    stmt = insert(table).on_conflict_do_nothing(index_elements=list(conflict_columns))
    return stmt.returning(*(table.c[name] for name in returning))


# Rows changed at once past which a table's statistics are refreshed. After a bulk status change
# (a batch's annotations accepted at once) the planner still saw the old statuses, and the next
# stage's query (the gold gate's) ran nested loops over every row.
BULK_CHANGE_ROWS = 10_000
# ANALYZE samples 300 rows per unit of target.
REFRESH_STATISTICS_TARGET = 20


def refresh_statistics(session: Session, changed_rows: int, *models: type[Base]) -> None:
    """PostgreSQL: ANALYZE these tables after a bulk change, so the next stage is planned for the
    data as it now is, not as autovacuum last saw it (up to a minute ago and 10% of rows behind).
    Done last in the transaction: its lock on the tables lasts until the commit just after.

    JSON columns are left out: no query plans on their contents, and reading and comparing the
    sampled documents was most of the cost.

    A sample of 6,000 rows, not the default 30,000: what the next stage's plan turns on is how
    many rows now have which status, a handful of values that a small sample measures as well,
    and ANALYZE reads every sampled row."""
    if changed_rows < BULK_CHANGE_ROWS or not is_postgres(session):
        return
    # Until the commit just after; a column given its own target (ALTER … SET STATISTICS) keeps it.
    session.execute(text(f"SET LOCAL default_statistics_target = {REFRESH_STATISTICS_TARGET}"))
    for model in models:
        table = model.__table__
        assert isinstance(table, Table)
        columns = ", ".join(f'"{column.name}"' for column in table.columns if not isinstance(column.type, JSON))
        session.execute(text(f'ANALYZE "{table.name}" ({columns})'))


def update_ids(session: Session, model: type[Base], ids: Sequence[int], values: dict[str, Any], *where: Any) -> None:
    """UPDATE model SET values WHERE its key is one of ids (and `where`), in slices of 50,000 ids."""
    key = next(iter(model.__mapper__.primary_key))
    for start in range(0, len(ids), 50_000):
        session.execute(
            update(model)
            .where(matches_any(session, key, list(ids[start : start + 50_000])), *where)
            .values(values)
            .execution_options(synchronize_session=False)
        )


def update_grouped(
    session: Session,
    model: type[Base],
    value_of: Mapping[int, Any],
    set_for: Callable[[Any], dict[str, Any]],
    *where: Any,
) -> None:
    """Give each row its own value (id -> value) with one UPDATE per distinct value, not per row."""
    groups: dict[Any, list[int]] = defaultdict(list)
    for row_id, value in value_of.items():
        groups[value].append(row_id)
    for value, ids in groups.items():
        update_ids(session, model, ids, set_for(value), *where)


def update_each(session: Session, model: type[Base], column: str, value_of: Mapping[int, Any]) -> None:
    """Give each row its own value of one column (id -> value), as one executemany: for values
    that mostly differ (a reliability per expert), where one UPDATE per distinct value would send
    a statement per row."""
    if not value_of:
        return
    table = model.__table__
    assert isinstance(table, Table)
    key = next(iter(model.__mapper__.primary_key)).name
    statement = update(table).where(table.c[key] == bindparam("row_key")).values({column: bindparam("row_value")})
    session.connection().execute(statement, [{"row_key": k, "row_value": v} for k, v in value_of.items()])


def matches_any(session: Session, column: Any, values: list[Any]) -> ColumnElement[bool]:
    """column IN values; on PostgreSQL as = ANY(one array parameter), not thousands of parameters."""
    if is_postgres(session):
        return column == any_(bindparam("any_values", values, type_=ARRAY(column.type), unique=True))  # type: ignore[no-any-return]
    return column.in_(values)  # type: ignore[no-any-return]


def insert_new(session: Session, model: type[Base], rows: Sequence[dict[str, Any]], conflict_columns: list[str]) -> int:
    """Write rows that are usually all new; returns how many were. PostgreSQL tries a straight COPY
    first; a conflict (a re-run finding some there already) takes the conflict-ignoring path. The
    unique key decides either way."""
    if is_postgres(session) and copy_if_all_new(session, model, rows):
        return len(rows)
    return insert_ignoring_conflicts(session, model, rows, conflict_columns)


def copy_if_all_new(session: Session, model: type[Base], rows: Sequence[dict[str, Any]]) -> bool:
    """PostgreSQL: COPY the rows straight into the table, all or none. False (and nothing written)
    if any of them breaks a unique key, so the caller can take the conflict-aware path instead.

    Half the database work of staging + INSERT … SELECT, for the common case of a chunk whose known
    ids were already set aside; the unique keys still decide, so a concurrent writer is safe.
    """
    if not rows:
        return True
    table = model.__table__
    assert isinstance(table, Table)
    try:
        with session.begin_nested():
            _copy_rows(session, table, f'"{table.name}"', rows)
    except pg_errors.UniqueViolation:
        return False
    return True


def _json_text(value: Any) -> str:
    # orjson: several times faster than the json module psycopg's Jsonb uses, and this is per row.
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str).decode()


def _copy_rows(session: Session, table: Table, target: str, rows: Sequence[dict[str, Any]]) -> None:
    names = list(rows[0])
    is_json = [isinstance(table.c[name].type, JSON) for name in names]
    quoted = ", ".join(f'"{name}"' for name in names)
    raw = session.connection().connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(f"COPY {target} ({quoted}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(
                [
                    _json_text(row[name]) if json and row[name] is not None else row[name]
                    for name, json in zip(names, is_json, strict=True)
                ]
            )


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
    staging = f"staging_{table.name}_{next(_staging_names)}"
    quoted = ", ".join(f'"{name}"' for name in rows[0])
    raw = session.connection().connection.driver_connection
    assert raw is not None
    with raw.cursor(row_factory=namedtuple_row) as cursor:
        # Same column types as the target, none of its constraints; gone at commit.
        cursor.execute(
            f'CREATE TEMP TABLE "{staging}" ON COMMIT DROP AS SELECT {quoted} FROM "{table.name}" WITH NO DATA'
        )
        _copy_rows(session, table, f'"{staging}"', rows)
        key = ", ".join(f'"{c}"' for c in conflict_columns)
        back = ", ".join(f'"{c}"' for c in returning)
        cursor.execute(
            f'INSERT INTO "{table.name}" ({quoted}) SELECT {quoted} FROM "{staging}" '
            f"ON CONFLICT ({key}) DO NOTHING RETURNING {back}"
        )
        result: list[Any] = cursor.fetchall()
        cursor.execute(f'DROP TABLE "{staging}"')
    # Named tuples: callers read columns by name, as with SQLAlchemy rows.
    return result
