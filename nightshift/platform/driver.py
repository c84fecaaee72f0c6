"""Core statements run on a bare psycopg connection: the expert API's hot path.

SQLAlchemy's work around a statement it has already compiled and cached (a session, a
transaction, an execution context, a result) costs more Python per submission than psycopg's
own, and the API is bound by its processes' CPU. The statements stay Core objects, written once
for both databases; this compiles each once more to psycopg's text, with the values it fixes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy import JSON
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from nightshift.platform.db import POSTGRES_OPTIONS

_DIALECT = psycopg_dialect.dialect()  # type: ignore[no-untyped-call]


class DriverStatement:
    """A Core statement as psycopg's text (`%(name)s` placeholders) and the values the statement
    itself holds (an IN list of constants, a literal status), compiled once."""

    def __init__(self, statement: ClauseElement) -> None:
        compiled = statement.compile(dialect=_DIALECT)
        assert isinstance(compiled, SQLCompiler)
        binds = compiled.binds.values()
        needed = {bind.key for bind in binds if bind.required}
        expanded = compiled.construct_expanded_state(dict.fromkeys(needed))
        self.sql = expanded.statement
        self.fixed = {name: value for name, value in expanded.parameters.items() if name not in needed}
        self.needed = frozenset(needed)
        # psycopg takes a dict for json only wrapped: SQLAlchemy's JSON type does that for its own path.
        self._json = frozenset(bind.key for bind in binds if bind.required and isinstance(bind.type, JSON))

    def run(self, connection: psycopg.Connection[Any], values: Mapping[str, Any]) -> psycopg.Cursor[Any]:
        """Run it as a prepared statement (one parse per connection, not per call)."""
        if values.keys() != self.needed:
            raise ValueError(f"values for {sorted(self.needed)} expected, got {sorted(values)}")
        given = {name: Jsonb(value) if name in self._json else value for name, value in values.items()}
        return connection.execute(self.sql, self.fixed | given, prepare=True)


def connect(url: str, options: str = "", application_name: str = "nightshift") -> psycopg.Connection[Any]:
    """A psycopg connection in autocommit mode to the SQLAlchemy URL's database, with the server
    settings make_engine gives its own connections, and `options` more (`-c name=value`).
    application_name: what pg_stat_activity shows it as."""
    parsed = make_url(url)
    options = " ".join(filter(None, [str(parsed.query.get("options", "")), POSTGRES_OPTIONS, options]))
    target = parsed.set(drivername="postgresql").difference_update_query(["options"])
    return psycopg.connect(
        target.render_as_string(hide_password=False),
        autocommit=True,
        options=options,
        application_name=application_name,
    )
