"""Rows an attacker or a broken exporter would send: each is quarantined with a reason that never
repeats the row, every valid row beside it loads, and a re-run of the file is clean."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from nightshift.ingest.batches import open_batch
from nightshift.ingest.formats import read_chunks
from nightshift.ingest.rows import prepare_chunk
from nightshift.ingest.store import store_chunk
from nightshift.platform.db import transaction
from nightshift.platform.models import Item, QuarantinedRow
from tests.nightshift.ingest.test_formats import CSV_GOOD, CSV_HEADER, items, quarantine
from tests.nightshift.ingest.test_ingest import good_row, ingest_file

MARK = "Zq7secret"  # a row's content: it must never appear in a reason


def _line(row: dict) -> bytes:
    return json.dumps(row).encode() + b"\n"


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


GOOD = _line(good_row("good-1"))
HOSTILE = [
    # (name, bytes, {line: reason prefix})
    ("nul-escape.jsonl", GOOD + _line(good_row("bad", prompt=f"A scenario {MARK}\u0000 long")), {2: "field prompt"}),
    ("nul-id.jsonl", GOOD + _line(good_row(f"bad-{MARK}\u0000")), {2: "external_id holds a NUL"}),
    (
        "nul-gold-key.jsonl",
        GOOD + _line(good_row("bad", gold_answer={f"rat\u0000{MARK}": 1})),
        {2: "gold_answer has a key that holds a NUL"},
    ),
    (
        "deep-gold.jsonl",
        GOOD + b'{"external_id": "deep", "prompt": "A scenario long enough.", "model_answer": "x", "language": "en", '
        b'"gold_answer": {"r": ' + _nested(600).encode() + b"}}\n",
        {2: "gold_answer is nested deeper than"},
    ),
    (
        "deep-extra.jsonl",
        GOOD + b'{"external_id": "deep", "prompt": "A scenario long enough.", "model_answer": "x", "language": "en", '
        b'"extra": ' + _nested(1000).encode() + b"}\n",
        {},
    ),
    ("deeper.jsonl", GOOD + _nested(2000).encode() + b"\n", {2: "not valid JSON"}),
    ("language.jsonl", GOOD + _line(good_row("lang", language=f"{MARK}")), {2: "language is not one of"}),
    ("bom.jsonl", b"\xef\xbb\xbf" + GOOD + _line(good_row("good-2")), {}),
    (
        "nul.csv",
        CSV_HEADER + CSV_GOOD + f"bad,A scenario {MARK}\x00 long enough.,x,en,\n".encode(),
        {3: "field prompt"},
    ),
    ("bom.csv", b"\xef\xbb\xbf" + CSV_HEADER + CSV_GOOD, {}),
    (
        "gold-nan.csv",
        b"external_id,prompt,model_answer,language,gold_answer\n"
        b'good-1,A scenario long enough.,x,en,\nbad,A scenario long enough.,x,en,"{""r"": NaN}"\n',
        {3: "gold_answer is not valid JSON"},
    ),
]
GOOD_IDS = {
    "bom.jsonl": ["good-1", "good-2"],
    "deep-extra.jsonl": ["deep", "good-1"],
}


@pytest.mark.parametrize(("name", "content", "reasons"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_a_hostile_row_is_quarantined_and_the_rest_loads_twice_over(
    sessions, project, tmp_path, name, content, reasons
):
    path = tmp_path / name
    path.write_bytes(content)
    batch_id, counts = ingest_file(sessions, path, chunk_rows=1)
    found = quarantine(sessions, batch_id)
    assert set(found) == set(reasons), found
    for line, reason in reasons.items():
        assert found[line].startswith(reason), found[line]
        assert MARK not in found[line] and "\x00" not in found[line]
    assert all(MARK not in reason for reason in counts.reasons)
    assert items(sessions) == GOOD_IDS.get(name, ["good-1"])
    # A re-run of the same file is clean: the same batch, nothing new, nothing raised.
    again_batch, again = ingest_file(sessions, path, chunk_rows=1)
    assert again_batch == batch_id and again.accepted == 0
    assert items(sessions) == GOOD_IDS.get(name, ["good-1"])


def test_a_value_the_database_refuses_is_quarantined_not_the_chunk(postgres_url, sample_spec, tmp_path) -> None:
    """Defence in depth: a value validation did not stop (planted here past validation) costs its
    own row, found by halves, with the database's error class as reason and never its message."""
    from nightshift.experts.registry import import_experts, parse_experts
    from nightshift.platform.db import make_engine, make_sessionmaker
    from nightshift.projects.registry import apply_spec
    from tests.conftest import SAMPLES

    engine = make_engine(postgres_url)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        apply_spec(session, sample_spec)
        import_experts(session, parse_experts(SAMPLES / "experts.jsonl")[0])
    path = tmp_path / "planted.jsonl"
    path.write_bytes(b"".join(_line(good_row(f"p-{n}")) for n in range(40)))
    with transaction(sessions) as session:
        batch_id = open_batch(session, "acme-scenarios", path).batch_id
    rows = next(read_chunks(path, "jsonl", False, 100))[0]
    prepared = prepare_chunk(batch_id, str(path), rows, sample_spec.project)
    prepared.items["p-17"]["fields"]["prompt"] = f"planted {MARK}\u0000"
    with transaction(sessions) as session:
        counts = store_chunk(session, batch_id, str(path), prepared, known_set_aside=False)
    assert counts.accepted == 39 and counts.quarantined == 1
    with sessions() as session:
        assert len(session.scalars(select(Item.id)).all()) == 39
        (reason,) = session.scalars(select(QuarantinedRow.reason)).all()
    assert reason.startswith("refused by the database: UntranslatableCharacter")
    assert MARK not in reason
    engine.dispose()


# Lines built from the pieces that break parsers and databases: JSON structure, escapes of NUL and
# lone surrogates, deep nesting, numbers beyond 64 bits, NaN, byte-order marks, stray bytes.
_pieces = st.sampled_from(
    [
        b'"',
        b",",
        b"{",
        b"}",
        b"[",
        b"]",
        b":",
        b"\\u0000",
        b"\\ud800",
        b"\x00",
        b"\xef\xbb\xbf",
        b"\xff",
        b"NaN",
        b"1e999",
        b"9" * 30,
        b'"external_id"',
        b'"gold_answer"',
        b'"prompt"',
        _nested(300).encode(),
    ]
)
hostile_line = st.lists(st.one_of(_pieces, st.binary(max_size=6)), max_size=16).map(
    lambda parts: b"".join(parts).replace(b"\n", b" ").replace(b"\r", b" ")
)


def _object_line(tag: str, n: int, prompt_noise: bytes) -> bytes:
    """A row shaped like a valid one whose prompt or gold answer carries the noise."""
    text = prompt_noise.decode("utf-8", "replace")
    return json.dumps(
        good_row(f"{tag}-x{n}", prompt=f"A scenario long enough {text}", gold_answer={"k": text})
    ).encode()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    noise=st.lists(hostile_line, max_size=8),
    shaped=st.lists(hostile_line, max_size=4),
    valid=st.integers(min_value=0, max_value=4),
    as_csv=st.booleans(),
)
def test_no_input_escapes_as_an_exception_and_no_valid_row_is_lost(postgres_url, noise, shaped, valid, as_csv) -> None:
    """Through the real store on PostgreSQL: each line ends as an item or a quarantine row."""
    from nightshift.platform.db import make_engine, make_sessionmaker
    from nightshift.projects.registry import apply_spec
    from nightshift.projects.spec import load_spec
    from tests.conftest import SAMPLES

    engine = make_engine(postgres_url)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        apply_spec(session, load_spec(SAMPLES / "spec.yaml"))
    tag = uuid.uuid4().hex[:8]
    if as_csv:
        good = [f"{tag}-{n},A scenario long enough.,An answer.,en,\n".encode() for n in range(valid)]
        body = CSV_HEADER + b"".join(line + b"\n" for line in noise) + b"".join(good)
    else:
        good = [_line(good_row(f"{tag}-{n}")) for n in range(valid)]
        shaped_lines = [_object_line(tag, n, s) + b"\n" for n, s in enumerate(shaped)]
        body = b"".join(line + b"\n" for line in noise) + b"".join(shaped_lines) + b"".join(good)
    path = Path(f"/tmp/hostile-{tag}.{'csv' if as_csv else 'jsonl'}")
    path.write_bytes(body)
    try:
        _batch, counts = ingest_file(sessions, path, chunk_rows=3)
        with sessions() as session:
            stored = set(session.scalars(select(Item.external_id).where(Item.external_id.startswith(tag))))
    finally:
        path.unlink()
        engine.dispose()
    assert counts.read == counts.accepted + counts.quarantined + counts.duplicates
    assert {f"{tag}-{n}" for n in range(valid)} <= stored
