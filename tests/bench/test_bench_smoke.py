"""The bench runner still runs end to end (on tiny data). It asserts completeness, never speed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_bench(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a bench script as ops would, from the checkout; it must exit 0."""
    result = subprocess.run([sys.executable, script, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


@pytest.mark.slow(27)
def test_the_stage_bench_runs_every_stage() -> None:
    result = run_bench("bench/run.py", "--items", "300", "--experts", "80", "--repeat", "1", "--database", "sqlite")
    stages = [line.split("  ")[0] for line in result.stdout.splitlines()]
    for stage in (
        "experts import",
        "ingest",
        "dispatch (assignments)",
        "simulate (submissions)",
        "review: gate + aggregate (submissions)",
        "deliver (records)",
    ):
        assert stage in stages, result.stdout


@pytest.mark.slow(45)
def test_the_ingest_bench_reports_every_figure(tmp_path: Path) -> None:
    result = run_bench(
        "bench/ingest.py", "--items", "3000", "--chunk-rows", "1000", *("--repeat", "1"), "--workdir", str(tmp_path)
    )
    figures = ("ingest flow", "raw COPY (ceiling)", "ratio to raw COPY", "re-run, skipped", "re-run, --force")
    for figure in (*figures, "peak RSS", "gate worker peak RSS"):
        assert figure in result.stdout, result.stdout
    assert "(accepted 3,000)" in result.stdout
    assert "3,000 duplicates" in result.stdout


@pytest.mark.slow(20)
def test_the_delivery_bench_reports_every_figure() -> None:
    result = run_bench("bench/deliver.py", "--records", "3000", "--repeat", "1", "--page-bytes", "65536")
    assert "records 3,000;" in result.stdout
    for figure in ("deliver (build + outbox + send)", "baseline: unsigned POSTs", "ratio sending / baseline"):
        assert figure in result.stdout, result.stdout
    assert "signing and bookkeeping" in result.stdout


@pytest.mark.slow(25)
def test_the_review_bench_gates_every_submission_and_compares_aggregators() -> None:
    result = run_bench("bench/review.py", "--items", "2000", "--repeat", "1")
    assert "submissions 6,000 (2,000 items x 3)" in result.stdout
    for figure in ("review (gates + aggregation)", "baseline: bare read of the rows", "ratio review / bare read"):
        assert figure in result.stdout, result.stdout
    majority = float(result.stdout.split("majority vote")[1].split()[0])
    dawid_skene = float(result.stdout.split("  Dawid-Skene")[1].split()[0])
    assert 0.5 < majority <= dawid_skene <= 1, result.stdout


@pytest.mark.slow(25)
def test_the_api_bench_stores_every_submission_and_reports_the_ceiling() -> None:
    args = ("--items", "100", "--repeat", "1", "--workers", "1", "--port", "8766", "--rate", "100")
    lines = run_bench("bench/api.py", *args).stdout.splitlines()
    assert "submissions via HTTP, back to back" in lines[-3], lines
    assert "submissions via HTTP at 100/s offered" in lines[-2], lines
    assert "baseline SELECT 1" in lines[-1] and "ratio" in lines[-1], lines


@pytest.mark.slow(20)
def test_the_quality_bench_reports_every_method_and_key(tmp_path: Path) -> None:
    out = tmp_path / "quality.json"
    args = ("--items", "200", "--experts", "60", "--seeds", "1", "--json", str(out))
    lines = run_bench("bench/quality.py", *args, "--copy-pasters", "0.05", "--near-duplicators", "0.05").stdout
    # The cheaters on words are reported with how many of their cheating answers were caught.
    for kind in ("copy_paster", "near_duplicator"):
        assert re.search(rf"{kind}\s+\d+ experts: \d+% of \d+ cheating answers flagged risky", lines), lines

    rows = {row["method"]: row for row in json.loads(out.read_text())}
    assert {"nightshift", "mv3", "ds3", "ds_2to3", "oracle"} <= set(rows)
    keys = {
        "method",
        "accuracy",
        "assignments_per_item",
        "pay_per_item",
        "correct_per_1000_usd",
        "good_paused_share",
        "careless_paused_share",
        "median_answers_to_pause",
        "stuck_batches",
    }
    assert all(set(row) == keys for row in rows.values())
    assert rows["nightshift"]["stuck_batches"] == 0 and rows["mv3"]["assignments_per_item"] == 3


@pytest.mark.slow(60)
def test_the_pipeline_bench_runs_every_stage_through_the_flows(tmp_path: Path) -> None:
    out = tmp_path / "pipeline.json"
    args = ("--items", "100", "--experts", "60", "--workdir", str(tmp_path), "--json", str(out))
    lines = run_bench("bench/pipeline.py", *args).stdout.splitlines()
    stages = ("ingest", "dispatch", "work", "review", "adjudication", "delivery", "total")
    for stage in stages:
        assert any(line.startswith(f"{stage} ") for line in lines), lines
    result = json.loads(out.read_text())
    assert result["batch_status"] == "passed" and not result["problems"]
    figures = result["stages"]
    assert figures["ingest"]["count"] == 100 and figures["ingest"]["baseline_seconds"] > 0
    assert figures["ingest"]["worker_peak_mb"] > 0
    assert figures["work"]["count"] == figures["dispatch"]["count"] == figures["review"]["count"]
    # Gold items (one in twenty) are ours: never delivered; the receiver verified every record.
    assert figures["delivery"]["count"] == result["receiver"]["records"] == 95
    assert figures["review"]["baseline_seconds"] > 0 and figures["delivery"]["baseline_seconds"] > 0


@pytest.mark.slow(30)
def test_the_generate_bench_stores_every_answer_and_reports_the_ratio(tmp_path: Path) -> None:
    result = run_bench(
        "bench/generate.py", "--prompts", "400", "--chunk-size", "150", *("--repeat", "1"), "--workdir", str(tmp_path)
    )
    for figure in ("bare async client", "generate flow", "ratio to bare client", "RSS by tenth of run"):
        assert figure in result.stdout, result.stdout
    assert "(stored 400)" in result.stdout
