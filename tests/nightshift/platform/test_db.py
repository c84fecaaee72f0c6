"""JSON columns read back exactly what was stored, on both databases; PostgreSQL session settings."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, update

from nightshift.platform.db import read_json, transaction
from nightshift.platform.models import Item
from tests.nightshift.ingest.test_ingest import good_row, ingest_file

STORED = {
    "big": 123456789012345678901234567890,
    "negative": -9223372036854775809,
    "id_like": "00012345678901234567890",
    "float": 0.1,
    "text": 'Grüße, 東京 — \u2028 \\ "quoted"',
    "nested": [{"a": [1, 2.5, None, True, 18446744073709551616]}],
}


def test_read_json_keeps_big_integers_exact_and_reads_what_json_reads() -> None:
    text = json.dumps(STORED)
    assert read_json(text) == STORED
    assert read_json(text.encode()) == STORED
    assert type(read_json(text)["big"]) is int
    assert read_json('{"x": NaN}')["x"] != read_json('{"x": NaN}')["x"]  # NaN, as the json module reads it
    assert type(read_json(text)["nested"][0]["a"][-1]) is int  # found however deep it sits
    assert read_json("1e19") == 1e19 and read_json("[0.5, 7]") == [0.5, 7]


def test_a_json_column_reads_back_exactly_what_was_stored(sessions, project, tmp_path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps(good_row("x-1")) + "\n")
    ingest_file(sessions, path)
    with transaction(sessions) as session:
        session.execute(update(Item).values(payload=STORED))
    with sessions() as session:
        assert session.scalars(select(Item.payload)).one() == STORED


def test_postgres_sessions_run_without_jit(postgres_url: str) -> None:
    # A batch's statements each run once: JIT's compile time (~0.2 s a statement) is never won back.
    from sqlalchemy import text

    from nightshift.platform.db import make_engine

    engine = make_engine(postgres_url)
    with engine.connect() as connection:
        assert connection.execute(text("SHOW jit")).scalar() == "off"
        # The URL's own options (the test's schema, chosen by search_path) still hold.
        assert connection.execute(text("SELECT current_schema()")).scalar() in postgres_url
        assert connection.execute(text("SELECT current_schema()")).scalar() != "public"
    engine.dispose()


def _backend_pid(engine) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar())


def _terminate(postgres_url: str, pid: int) -> None:
    import psycopg

    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://").split("?")[0]
    with psycopg.connect(plain, autocommit=True) as connection:
        assert connection.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)


def test_a_pooled_connection_that_died_while_idle_is_replaced_before_use(postgres_url: str) -> None:
    # Pinged only once idle past the threshold (0 here): the checkout finds it dead and takes a new one.
    from nightshift.platform.db import make_engine

    engine = make_engine(postgres_url, ping_after_idle=0.0)
    first = _backend_pid(engine)
    _terminate(postgres_url, first)
    assert _backend_pid(engine) not in (first, None)
    engine.dispose()


def test_a_connection_used_a_moment_ago_is_not_pinged_again(postgres_url: str) -> None:
    # The API's hot path: no ping round trip for a connection that just answered. A connection
    # killed in that moment fails its statement, which is what shows no ping ran.
    from sqlalchemy import exc, text

    from nightshift.platform.db import make_engine

    engine = make_engine(postgres_url, ping_after_idle=3600.0)
    _terminate(postgres_url, _backend_pid(engine))
    with pytest.raises(exc.OperationalError), engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    engine.dispose()


def test_an_item_names_a_batch_of_its_own_project_and_a_named_batch_stays(sessions, project, tmp_path) -> None:
    # On PostgreSQL by statement triggers (migration 0015: one set-based check per COPY, not a
    # query per row), on SQLite by the foreign key: the same refusals either way.
    from sqlalchemy import delete, insert, text
    from sqlalchemy.exc import IntegrityError

    from nightshift.platform.models import Batch

    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps(good_row("x-1")) + "\n")
    batch_id, _ = ingest_file(sessions, path)
    with sessions() as session:
        item = session.scalars(select(Item)).one()
    with transaction(sessions) as session:
        session.execute(
            text(
                "INSERT INTO projects (client_id, slug, name, spec, spec_version, spec_hash, created_at)"
                " SELECT client_id, 'other', name, spec, spec_version, spec_hash, created_at FROM projects"
            )
        )
        other = session.scalar(text("SELECT id FROM projects WHERE slug = 'other'"))
    row = {"batch_id": batch_id, "external_id": "x-2", "content_hash": "h", "language": "en", "payload": {}}
    refused = [
        # A batch that is not the item's project's; no batch at all (one bad row refuses the statement).
        insert(Item).values([{**row, "project_id": other}]),
        insert(Item).values(
            [
                {**row, "project_id": item.project_id, "external_id": "x-3"},
                {**row, "project_id": item.project_id, "batch_id": 10**9},
            ]
        ),
        update(Item).where(Item.id == item.id).values(batch_id=10**9),
        delete(Batch).where(Batch.id == batch_id),
        update(Batch).where(Batch.id == batch_id).values(project_id=other),
    ]
    for statement in refused:
        with pytest.raises(IntegrityError), transaction(sessions) as session:
            session.execute(statement)
    with transaction(sessions) as session:
        session.execute(insert(Item).values([{**row, "project_id": item.project_id, "external_id": "x-4"}]))
        # A batch's own updates (its status) are not checked against its items.
        session.execute(update(Batch).where(Batch.id == batch_id).values(status="dispatched"))
    with sessions() as session:
        assert sorted(session.scalars(select(Item.external_id))) == ["x-1", "x-4"]


def test_a_failed_statement_names_the_statement_never_its_values(sessions, project, tmp_path) -> None:
    from sqlalchemy.exc import IntegrityError

    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(good_row("v-1")) + "\n")
    batch_id, _ = ingest_file(sessions, path)
    with pytest.raises(IntegrityError) as failed, transaction(sessions) as session:
        session.execute(
            update(Item).where(Item.batch_id == batch_id).values(status="not-a-status", status_reason="client-secret-x")
        )
    said = str(failed.value)
    assert "UPDATE items" in said and "[SQL parameters hidden" in said
    # PostgreSQL's own DETAIL ("Failing row contains …") still quotes the row: the callers that
    # report such errors name only the error's class (sql.data_error_name).
    said_by_us = said if sessions.kw["bind"].dialect.name == "sqlite" else said.split("[SQL:")[1]
    assert "client-secret-x" not in said_by_us
