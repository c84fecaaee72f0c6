"""A corpus of malformed inputs, each with the reason it must get; good rows beside them still load."""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from nightshift.ingest.formats import detect_format, read_chunks
from nightshift.ingest.rows import prepare_chunk
from nightshift.platform.errors import SourceError
from nightshift.platform.models import Item, QuarantinedRow
from tests.nightshift.ingest.test_ingest import good_row, ingest_file

GOOD = json.dumps(good_row("good-1")).encode()
CSV_HEADER = b"external_id,prompt,model_answer,language,context\n"
CSV_GOOD = b"good-1,A scenario long enough to pass.,An answer.,en,\n"


def quarantine(sessions, batch_id: int) -> dict[int, str]:
    with sessions() as session:
        return dict(
            session.execute(
                select(QuarantinedRow.line_number, QuarantinedRow.reason).where(QuarantinedRow.batch_id == batch_id)
            ).all()
        )


def items(sessions) -> list[str]:
    with sessions() as session:
        return sorted(session.scalars(select(Item.external_id)))


CASES = [
    # (file name, bytes, {line: expected reason prefix}, expected file problems, expected good ids)
    ("utf8.jsonl", GOOD + b'\n{"external_id": "\xff\xfe"}\n', {2: "not valid UTF-8"}, [], ["good-1"]),
    ("notjson.jsonl", GOOD + b"\n{oops\n", {2: "not valid JSON: "}, [], ["good-1"]),
    ("array.jsonl", GOOD + b"\n[1, 2]\n", {2: "expected a JSON object, got an array"}, [], ["good-1"]),
    ("string.jsonl", GOOD + b'\n"text"\n', {2: "expected a JSON object, got a string"}, [], ["good-1"]),
    ("null.jsonl", GOOD + b"\nnull\n", {2: "expected a JSON object, got null"}, [], ["good-1"]),
    ("blank.jsonl", b"\n\n" + GOOD + b"\n\n", {}, [], ["good-1"]),
    ("empty.jsonl", b"", {0: "empty file: no rows"}, ["empty file: no rows"], []),
    ("allbad.jsonl", b"{x\n[]\n", {1: "not valid JSON", 2: "expected a JSON object"}, [], []),
    (
        "columns.csv",
        CSV_HEADER + CSV_GOOD + b"bad-1,too,few\n",
        {3: "row has 3 fields, the header has 5"},
        [],
        ["good-1"],
    ),
    ("headeronly.csv", CSV_HEADER, {1: "no data rows after the header"}, ["no data rows after the header"], []),
    ("empty.csv", b"", {0: "empty file: no rows"}, ["empty file: no rows"], []),
    (
        "utf8.csv",
        CSV_HEADER + CSV_GOOD + b"bad-\xff,A scenario long enough.,x,en,\n",
        {3: "not valid UTF-8"},
        [],
        ["good-1"],
    ),
    (
        "missing.csv",
        CSV_HEADER + CSV_GOOD + b"bad-2,,An answer.,en,\n",
        {3: "missing required field prompt"},
        [],
        ["good-1"],
    ),
    ("quote.csv", CSV_HEADER + b'"oops\n' + CSV_GOOD, {2: "unterminated quoted field"}, [], ["good-1"]),
    # Opened in the header's last field: to the file's end it still makes the header's five fields.
    (
        "lastquote.csv",
        CSV_HEADER + b',,,,"\n\n' + CSV_GOOD,
        {2: "unterminated quoted field"},
        [],
        ["good-1"],
    ),
]


@pytest.mark.parametrize(("name", "content", "reasons", "problems", "good"), CASES, ids=[c[0] for c in CASES])
def test_each_malformed_input_gets_its_reason(sessions, project, tmp_path, name, content, reasons, problems, good):
    path = tmp_path / name
    path.write_bytes(content)
    batch_id, counts = ingest_file(sessions, path)
    found = quarantine(sessions, batch_id)
    assert set(found) == set(reasons)
    for line, reason in reasons.items():
        assert found[line].startswith(reason), found[line]
    assert counts.problems == problems
    assert items(sessions) == good


def test_a_truncated_gzip_keeps_every_row_before_the_cut(sessions, project, tmp_path) -> None:
    lines = b"".join(json.dumps(good_row(f"g-{n}")).encode() + b"\n" for n in range(2000))
    whole = gzip.compress(lines)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    _batch_id, counts = ingest_file(sessions, path, chunk_rows=100)
    assert len(counts.problems) == 1 and counts.problems[0].startswith("truncated gzip: the file ends early after line")
    loaded = items(sessions)
    assert 0 < len(loaded) < 2000
    # Every row before the cut loaded, none after it: the ids form one unbroken prefix.
    assert sorted(int(e.split("-")[1]) for e in loaded) == list(range(len(loaded)))


def test_a_whole_gzip_file_loads(sessions, project, tmp_path) -> None:
    path = tmp_path / "ok.jsonl.gz"
    path.write_bytes(gzip.compress(GOOD + b"\n"))
    _, counts = ingest_file(sessions, path)
    assert (counts.accepted, counts.problems) == (1, [])


def test_a_ten_megabyte_field_is_refused_and_kept_short_in_quarantine(sessions, project, tmp_path) -> None:
    path = tmp_path / "huge.jsonl"
    path.write_text(json.dumps(good_row("huge", prompt="x" * 10_000_000)) + "\n" + json.dumps(good_row("ok")) + "\n")
    batch_id, _counts = ingest_file(sessions, path)
    assert quarantine(sessions, batch_id)[1] == "field prompt has 10000000 characters, allowed 10..20000"
    with sessions() as session:
        raw = session.scalars(select(QuarantinedRow.raw)).one()
    assert len(raw) <= 10_000
    assert items(sessions) == ["ok"]


def test_parquet_rows_load_and_bad_ones_are_quarantined(sessions, project, tmp_path) -> None:
    table = pa.Table.from_pylist(
        [
            good_row("p-1"),
            good_row("p-2", language="xx"),
            dict(good_row("p-3"), prompt=None),
        ]
    )
    path = tmp_path / "items.parquet"
    pq.write_table(table, path)
    batch_id, _ = ingest_file(sessions, path)
    assert items(sessions) == ["p-1"]
    found = quarantine(sessions, batch_id)
    assert found[2].startswith("language is not one of")
    assert found[3] == "missing required field prompt"


def test_a_corrupt_parquet_file_is_one_problem(sessions, project, tmp_path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    _, counts = ingest_file(sessions, path)
    assert counts.problems[0].startswith("not a readable Parquet file")


def test_formats_come_from_the_name_unless_overridden(tmp_path) -> None:
    assert detect_format(Path("a.jsonl.gz")) == ("jsonl", True)
    assert detect_format(Path("a.CSV")) == ("csv", False)
    assert detect_format(Path("a.txt"), "csv") == ("csv", False)
    with pytest.raises(SourceError, match=r"cannot tell the format of a\.txt"):
        detect_format(Path("a.txt"))


# Lines a fuzzer may produce: arbitrary bytes, weighted towards what breaks parsers (quotes,
# delimiters, braces, stray UTF-8 bytes), never containing a newline (one line each).
_tricky = st.sampled_from([b'"', b",", b"{", b"}", b"[", b"\\", b"\xff", b"\xc3", b'""', b"\x00", b" "])
garbage = st.lists(st.one_of(_tricky, st.binary(max_size=8)), max_size=20).map(
    lambda parts: b"".join(parts).replace(b"\n", b" ").replace(b"\r", b" ")
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(noise=st.lists(garbage, max_size=12), valid=st.integers(min_value=0, max_value=8), as_csv=st.booleans())
def test_arbitrary_bytes_never_crash_ingestion_or_drop_a_valid_row(sample_spec, noise, valid, as_csv) -> None:
    """Validation only (no database): every valid row survives and every line is accounted for."""
    tag = uuid.uuid4().hex[:8]
    if as_csv:
        rows = [CSV_HEADER] + [f"{tag}-{n},A scenario long enough.,An answer.,en,\n".encode() for n in range(valid)]
    else:
        rows = [json.dumps(good_row(f"{tag}-{n}")).encode() + b"\n" for n in range(valid)]
    body = b"".join(line + b"\n" for line in noise)
    path = Path(f"/tmp/fuzz-{tag}.{'csv' if as_csv else 'jsonl'}")
    path.write_bytes(b"".join(rows[:1]) + body + b"".join(rows[1:]) if as_csv else body + b"".join(rows))
    try:
        accepted: set[str] = set()
        for chunk, _ in read_chunks(path, "csv" if as_csv else "jsonl", False, 5):
            prepared = prepare_chunk(1, str(path), chunk, sample_spec.project)
            accepted |= set(prepared.items)
            assert prepared.counts.read == len(prepared.items) + prepared.counts.quarantined
    finally:
        path.unlink()
    expected = {f"{tag}-{n}" for n in range(valid)}
    assert expected <= accepted
