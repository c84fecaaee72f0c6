"""JSON columns read back exactly what was stored, on both databases; PostgreSQL session settings."""

from __future__ import annotations

import json

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
