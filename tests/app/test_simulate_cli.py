"""`nightshift simulate --until-done`: a batch run to the end through the real flows, its cost and accuracy."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from app.cli import app
from nightshift.experts.registry import import_experts, parse_experts
from nightshift.platform.db import make_engine, make_sessionmaker, transaction
from nightshift.platform.models import Batch, Item
from nightshift.projects.registry import apply_spec
from nightshift.projects.spec import load_spec
from tests.conftest import SAMPLES
from tests.nightshift.ingest.test_ingest import ingest_file


def test_until_done_runs_a_batch_to_passed_and_prints_its_cost_and_accuracy(
    app_env, prefect_api, tmp_path: Path
) -> None:
    sessions = make_sessionmaker(make_engine(app_env))
    experts, _ = parse_experts(SAMPLES / "experts.jsonl")
    spec = load_spec(SAMPLES / "spec.yaml")
    with transaction(sessions) as session:
        apply_spec(session, spec)
        import_experts(session, experts)
    small = tmp_path / "small.jsonl"
    small.write_text("".join((SAMPLES / "items.jsonl").read_text().splitlines(keepends=True)[:40]))
    batch_id, _ = ingest_file(sessions, small)

    result = CliRunner().invoke(app, ["simulate", "--batch", str(batch_id), "--until-done"], catch_exceptions=False)

    assert result.exit_code == 0, result.output
    found = re.search(
        r"passed after (\d+) rounds; (\d+) items delivered, accuracy ([\d.]+) against the truth, ([\d.]+) assignments",
        result.output,
    )
    assert found, result.output
    rounds, delivered, accuracy, per_item = int(found[1]), int(found[2]), float(found[3]), float(found[4])
    with sessions() as session:
        assert session.get_one(Batch, batch_id).status == "passed"
        regular = session.query(Item).filter(Item.batch_id == batch_id, Item.is_gold.is_(False)).count()
    # Done well before the 20-round limit; items start at 3 experts (the sample spec), a few need more.
    assert rounds < 20 and delivered == regular
    assert accuracy > 0.5 and 3 <= per_item < 6
