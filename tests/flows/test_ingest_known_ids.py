"""A new file whose ids were partly ingested before, through the flow: its chunks are copied in
without a lookup until one meets a known id; then known ids are sorted out as always."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from flows.ingest import IngestParams, ingest_flow
from nightshift.platform.db import make_engine, make_sessionmaker
from nightshift.platform.models import Item, QuarantinedRow
from tests.nightshift.ingest.test_ingest import good_row


def test_a_new_file_with_known_ids_counts_duplicates_and_conflicts_and_overwrites_nothing(
    app_env, prefect_api, project, tmp_path: Path
) -> None:
    first = tmp_path / "first.jsonl"
    first.write_text("".join(json.dumps(good_row(f"k-{i}")) + "\n" for i in range(30)))
    assert ingest_flow(IngestParams(project="acme-scenarios", source=str(first))).total("accepted") == 30
    # The first chunk is all new (copied in whole); the second mixes new, same and changed items.
    rows = [good_row(f"n-{i}") for i in range(25)]
    rows += [good_row(f"k-{i}") for i in range(10)]
    rows += [good_row(f"k-{i}", model_answer="A changed answer.") for i in range(10, 13)]
    rows += [good_row(f"m-{i}") for i in range(5)]
    second = tmp_path / "second.jsonl"
    second.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = ingest_flow(IngestParams(project="acme-scenarios", source=str(second), chunk_rows=25))
    assert [(f.accepted, f.duplicates, f.conflicts, f.quarantined) for f in result.files] == [(30, 10, 3, 0)]
    engine = make_engine(app_env)
    with make_sessionmaker(engine)() as session:
        answers = dict(session.execute(select(Item.external_id, Item.payload["model_answer"].as_string())).all())
        kept = session.scalars(select(QuarantinedRow.external_id).where(QuarantinedRow.reason.like("conflict:%")))
        conflicts = sorted(kept)
    engine.dispose()
    assert len(answers) == 60
    assert {answers[f"k-{i}"] for i in range(10, 13)} == {"An answer."}
    assert conflicts == ["k-10", "k-11", "k-12"]
