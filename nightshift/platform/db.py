"""Engine and session construction for SQLite (embedded) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.orm import Session, sessionmaker


def make_engine(
    url: str, ping_after_idle: float | None = None, pool_size: int = 20, max_overflow: int = 10, options: str = ""
) -> Engine:
    """ping_after_idle: seconds a pooled PostgreSQL connection may sit idle and still be used
    without a ping first (PING_AFTER_IDLE). pool_size, max_overflow: PostgreSQL's pool; options:
    more server settings for its connections (`-c name=value`).

    hide_parameters: a statement's error names the statement, never its values: they are client
    content (an item's text, a model's answer), and an error goes to logs and to the Prefect UI."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, json_deserializer=read_json, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        json_deserializer=read_json,
        hide_parameters=True,
        # Added to any options the URL sets (a search_path, say), which connect_args would replace.
        connect_args={
            "options": " ".join(filter(None, [str(parsed.query.get("options", "")), POSTGRES_OPTIONS, options]))
        },
    )
    event.listen(engine.pool, "checkin", _note_idle)
    idle = PING_AFTER_IDLE if ping_after_idle is None else ping_after_idle
    event.listen(engine.pool, "checkout", partial(_ping_if_idle, engine.dialect, idle))
    return engine


# A pooled connection is pinged before use only once it has sat idle this long (seconds). SQLAlchemy's
# pool_pre_ping pings on every checkout: a third round trip of each API submission, for a
# connection that answered a few milliseconds before. One idle this long may have been dropped by
# a server restart, a failover or a proxy's idle timeout, and is checked as pre_ping would.
PING_AFTER_IDLE = 1.0


def _note_idle(_dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dialect: Dialect, idle: float, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    since = record.info.get("idle_since")
    if since is None or time.monotonic() - since < idle:
        return  # new, or used a moment ago
    try:
        dialect.do_ping(dbapi_connection)
    except dialect.loaded_dbapi.Error as error:
        # As pool_pre_ping does: the dead connection is dropped and the checkout tried again.
        raise exc.DisconnectionError("a pooled connection was closed while idle") from error


# No JIT: PostgreSQL compiles each statement whose estimated cost passes jit_above_cost afresh, with
# inlining and optimisation, and our big statements (a batch's read, its status updates in
# slices) each run once, so the compile is never won back: the review runs faster without it.
POSTGRES_OPTIONS = "-c jit=off"


# orjson reads an integer beyond 64 bits as a float, and no integer within them as one: a float this
# large may be such an integer (or a literal like 1e19), so that text is read again by the json
# module, which keeps integers exact. Looking at the decoded floats costs far less than scanning
# every text for long runs of digits.
_HUGE = float(2**63)


def read_json(text: str | bytes) -> Any:
    """JSON columns as Python values. orjson reads the answers and payloads a review or a delivery
    loads by the hundred thousand several times faster than the json module; the json module
    reads any text where orjson may have rounded a big integer, so it comes back exact."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # what orjson refuses and json accepts (NaN, say) still reads as it always did
    return json.loads(text) if _holds_huge_float(value) else value


def _holds_huge_float(value: Any) -> bool:
    pending = [value]
    while pending:
        current = pending.pop()
        kind = type(current)
        if kind is dict:
            pending.extend(current.values())
        elif kind is list:
            pending.extend(current)
        elif kind is float and not -_HUGE < current < _HUGE:
            return True
    return False


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # SQLite enforces foreign keys only when asked, per connection; WAL lets readers run beside a writer.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session


@contextmanager
def single_statements(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work whose one write is a single statement (an expert's submission): on
    PostgreSQL each statement commits on its own, so no BEGIN and no COMMIT go to the server (two
    round trips of every submission); on SQLite, which needs several statements for the same
    write, one transaction as `transaction` gives. The caller's code must hold either way."""
    with factory() as session, session.begin():
        if session.get_bind().dialect.name == "postgresql":
            session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session
