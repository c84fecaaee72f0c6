"""`nightshift demo`, the README's first command, run twice in one process."""

from __future__ import annotations

import os
import re

import pytest
from typer.testing import CliRunner

from app.cli import app
from tests.conftest import SAMPLES


@pytest.mark.slow(150)
def test_the_demo_delivers_verified_webhooks_and_can_run_twice(prefect_api, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("NIGHTSHIFT_HOME", str(tmp_path))
    # The demo points the process at its own SQLite file; monkeypatch puts the variables back.
    monkeypatch.setenv("NIGHTSHIFT_DATABASE_URL", os.environ.get("NIGHTSHIFT_DATABASE_URL", ""))
    monkeypatch.setenv("ACME_WEBHOOK_SECRET", "")
    runner = CliRunner()
    result = runner.invoke(app, ["demo"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = result.stdout.split("Nightshift demo summary", 1)[1]
    assert "items ingested        240 (re-ingest of the same file added 0)" in summary
    assert "items delivered       228" in summary
    assert "rejected 0; 228 unique records" in summary
    # The client's training files, where the demo says they are.
    assert "training data (preference)" in summary and "dataset card" in summary
    folder = tmp_path / "deliveries" / "acme" / "acme-model-comparison" / "batch-1" / "v1"
    assert len((folder / "records.jsonl").read_text().splitlines()) == 228
    assert {p.name for p in (folder / "training").iterdir()} == {"sft.parquet", "preference.parquet", "reward.parquet"}

    # Again in the same process and state folder, on a smaller file: it starts from a clean slate.
    small = tmp_path / "small.jsonl"
    small.write_text("".join((SAMPLES / "items.jsonl").read_text().splitlines(keepends=True)[:40]))
    again = runner.invoke(app, ["demo", "--items", str(small)], catch_exceptions=False)
    assert again.exit_code == 0, again.output
    summary = again.stdout.split("Nightshift demo summary", 1)[1]
    assert "items ingested        40 (re-ingest of the same file added 0)" in summary
    delivered = int(re.search(r"items delivered\s+(\d+)", summary)[1])  # type: ignore[index]
    assert 36 <= delivered <= 40 and f"rejected 0; {delivered} unique records" in summary
