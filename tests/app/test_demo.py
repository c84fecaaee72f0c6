"""`nightshift demo`, the README's first command, run twice in one process."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from app.cli import app


@pytest.mark.slow(105)
def test_the_demo_delivers_verified_webhooks_and_can_run_twice(prefect_api, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("NIGHTSHIFT_HOME", str(tmp_path))
    # The demo points the process at its own SQLite file; monkeypatch puts the variables back.
    monkeypatch.setenv("NIGHTSHIFT_DATABASE_URL", os.environ.get("NIGHTSHIFT_DATABASE_URL", ""))
    monkeypatch.setenv("ACME_WEBHOOK_SECRET", "")
    runner = CliRunner()
    for _ in range(2):
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
