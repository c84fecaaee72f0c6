from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from nightshift.ingest.batches import mark_ingest_complete, open_batch
from nightshift.ingest.formats import detect_format, read_chunks
from nightshift.ingest.rows import IngestCounts
from nightshift.ingest.store import load_chunk
from nightshift.platform.db import make_engine, make_sessionmaker, transaction
from nightshift.platform.errors import NotFoundError, SourceError
from nightshift.platform.models import Batch, GoldAnswer, Item, Project, QuarantinedRow
from nightshift.projects.registry import apply_spec
from tests.conftest import SAMPLES


def ingest_file(
    sessions, path: Path, project: str = "acme-scenarios", fmt: str | None = None, chunk_rows: int = 50
) -> tuple[int, IngestCounts]:
    """The core's ingest path as the flow drives it, minus Prefect: chunk by chunk, a transaction each."""
    kind, compressed = detect_format(path, fmt)
    with transaction(sessions) as session:
        batch_id = open_batch(session, project, path, kind).batch_id
    totals = IngestCounts()
    for rows, _ in read_chunks(path, kind, compressed, chunk_rows):
        with transaction(sessions) as session:
            totals.add(load_chunk(session, batch_id, str(path), rows))
    with transaction(sessions) as session:
        mark_ingest_complete(session, batch_id)
    return batch_id, totals


def count(sessions, model) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_ingesting_the_same_file_twice_adds_nothing(sessions, project) -> None:
    first_batch, first = ingest_file(sessions, SAMPLES / "items.jsonl")
    second_batch, second = ingest_file(sessions, SAMPLES / "items.jsonl")
    assert (first.read, first.accepted, first.quarantined) == (240, 240, 0)
    assert second_batch == first_batch
    assert (second.accepted, second.duplicates) == (0, 240)
    assert count(sessions, Item) == 240
    assert count(sessions, Batch) == 1
    assert count(sessions, GoldAnswer) == 12


def good_row(external_id: str, **overrides) -> dict:
    row = {
        "external_id": external_id,
        "prompt": "A scenario long enough to pass.",
        "model_answer": "An answer.",
        "language": "en",
    }
    row.update(overrides)
    return row


def test_bad_rows_are_quarantined_with_reasons_and_good_rows_load(sessions, project, tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    lines = [
        json.dumps(good_row("ok-1")),
        "{not json",
        "[1, 2, 3]",
        json.dumps(good_row("")),
        json.dumps({k: v for k, v in good_row("no-prompt").items() if k != "prompt"}),
        json.dumps(good_row("klingon", language="tlh")),
        json.dumps(good_row("short", prompt="tiny")),
        json.dumps(good_row("ok-1")),
        json.dumps(good_row("bad-gold", gold_answer="yes")),
        json.dumps(good_row("ok-2")),
    ]
    path.write_bytes(("\n".join(lines) + "\n").encode() + b'{"external_id": "\xff\xfe"}\n')
    batch_id, counts = ingest_file(sessions, path)
    assert (counts.read, counts.accepted, counts.quarantined) == (11, 2, 9)
    with sessions() as session:
        reasons = dict(
            session.execute(
                select(QuarantinedRow.line_number, QuarantinedRow.reason).where(QuarantinedRow.batch_id == batch_id)
            ).all()
        )
    assert reasons[2].startswith("not valid JSON: unexpected character")
    assert reasons[3] == "expected a JSON object, got an array"
    assert reasons[4] == "missing external_id"
    assert reasons[5] == "missing required field prompt"
    assert reasons[6].startswith("language is not one of")
    assert reasons[7].startswith("field prompt has 4 characters, allowed 10..")
    assert reasons[8] == "duplicate external_id in the same file"
    assert reasons[9] == "gold_answer must be an object"
    assert reasons[11] == "not valid UTF-8"


def test_changed_content_under_a_known_id_is_a_conflict_not_an_overwrite(sessions, project, tmp_path) -> None:
    original = tmp_path / "a.jsonl"
    original.write_text(json.dumps(good_row("x-1")) + "\n")
    changed = tmp_path / "b.jsonl"
    changed.write_text(json.dumps(good_row("x-1", model_answer="A different answer.")) + "\n")
    ingest_file(sessions, original)
    batch_id, counts = ingest_file(sessions, changed)
    assert (counts.accepted, counts.conflicts, counts.duplicates) == (0, 1, 0)
    with sessions() as session:
        item = session.scalars(select(Item)).one()
        kept = session.scalars(select(QuarantinedRow).where(QuarantinedRow.batch_id == batch_id)).one()
    assert item.payload["model_answer"] == "An answer."
    assert kept.reason.startswith("conflict:")
    assert "A different answer." in kept.raw


def test_missing_file_and_unknown_project_write_nothing(sessions, project, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="file not found"), transaction(sessions) as session:
        open_batch(session, "acme-scenarios", tmp_path / "nope.jsonl")
    with pytest.raises(NotFoundError, match="unknown project 'nope'"), transaction(sessions) as session:
        open_batch(session, "nope", SAMPLES / "items.jsonl")
    assert count(sessions, Batch) == 0


def test_an_item_cannot_sit_in_a_batch_of_another_project(sessions, project, sample_spec, tmp_path) -> None:
    other = sample_spec.model_copy(update={"project": sample_spec.project.model_copy(update={"slug": "other-work"})})
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps(good_row("x-1")) + "\n")
    batch_id, _ = ingest_file(sessions, path)
    with transaction(sessions) as session:
        apply_spec(session, other)
        other_id = session.scalars(select(Project.id).where(Project.slug == "other-work")).one()
    # The database refuses it, whichever code writes: one key on (batch, project).
    with sessions() as session:
        item = session.scalars(select(Item)).one()
        session.add(
            Item(
                project_id=other_id,
                batch_id=batch_id,
                external_id="x-2",
                content_hash=item.content_hash,
                language="en",
                payload=item.payload,
            )
        )
        with pytest.raises(IntegrityError):
            session.flush()


def test_a_chunk_is_stored_without_writing_a_temporary_file(postgres_url: str, sample_spec, tmp_path) -> None:
    # The batch key's trigger reads the copied items from a transition table; past work_mem it
    # spilled to a temporary file. 2,500 items of ~3 KB each are well past the 4 MB default.
    engine = make_engine(postgres_url)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        apply_spec(session, sample_spec)
    path = tmp_path / "large.jsonl"
    path.write_text("".join(json.dumps(good_row(f"x-{i}", prompt="p" * 3000)) + "\n" for i in range(2500)))
    with transaction(sessions) as session:
        batch_id = open_batch(session, "acme-scenarios", path, "jsonl").batch_id
    (rows, _), *_ = read_chunks(path, "jsonl", False, 2500)
    with transaction(sessions) as session:
        # Any byte written to a temporary file now fails the statement.
        session.execute(text("SET LOCAL temp_file_limit = 0"))
        counts = load_chunk(session, batch_id, str(path), rows)
    assert counts.accepted == 2500
    engine.dispose()
