"""`nightshift payouts`: a period run through its Prefect flow, statements and corrections."""

from __future__ import annotations

import csv
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from app.cli import app
from nightshift.dispatch.assignments import dispatch_batch
from nightshift.experts.registry import import_experts, parse_experts
from nightshift.payouts.periods import Period
from nightshift.platform.db import make_engine, make_sessionmaker, transaction
from nightshift.platform.models import Assignment, Expert, utcnow
from nightshift.projects.registry import apply_spec
from nightshift.projects.spec import load_spec
from nightshift.work.submissions import NewSubmission, record_submissions, start_assignments
from tests.app.test_cli_errors import env, nightshift, one_line_error  # noqa: F401  (env is a fixture)
from tests.conftest import SAMPLES
from tests.nightshift.ingest.test_ingest import ingest_file

ANSWER = {"rating": 5, "error_tags": [], "rationale": "r" * 50, "improved_prompt": "p" * 90}


def test_ops_pay_a_period_twice_read_a_statement_and_add_a_correction(
    app_env, prefect_api, monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NIGHTSHIFT_PAYOUTS_DIR", str(tmp_path / "payouts"))
    sessions = make_sessionmaker(make_engine(app_env))
    experts, _ = parse_experts(SAMPLES / "experts.jsonl")
    with transaction(sessions) as session:
        apply_spec(session, load_spec(SAMPLES / "spec.yaml"))
        import_experts(session, experts)
    batch_id, _ = ingest_file(sessions, SAMPLES / "items.jsonl")
    now = utcnow()
    with transaction(sessions) as session:
        dispatch_batch(session, batch_id, now - dt.timedelta(hours=2))
        ids = list(session.scalars(select(Assignment.id).order_by(Assignment.id).limit(20)))
        start_assignments(session, dict.fromkeys(ids, now - dt.timedelta(minutes=90)))
        record_submissions(session, [NewSubmission(a, ANSWER) for a in ids], now - dt.timedelta(minutes=60))
        handle = session.get_one(Expert, session.get_one(Assignment, ids[0]).expert_id).handle
    week = Period.week_of(now - dt.timedelta(minutes=60)).label

    runner = CliRunner()
    first = runner.invoke(app, ["payouts", "--period", week, "--json"], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    paid = json.loads(first.stdout)
    assert paid["time_entries"] == 20 and not paid["closed"]
    assert Decimal(paid["period_total"]) == Decimal(paid["paid_now"]) > 0
    again = json.loads(runner.invoke(app, ["payouts", "--period", week, "--json"]).stdout)
    assert again["time_entries"] == 0 and again["paid_now"] == "0.00"
    assert again["period_total"] == paid["period_total"]
    rows = list(csv.DictReader(Path(paid["csv_path"]).read_text().splitlines()))
    assert sum(Decimal(r["amount"]) for r in rows) == Decimal(paid["period_total"])

    correct = ["payouts", "correct", handle, "-p", "acme-scenarios", "--amount", "5.00"]
    correct += ["--reason", "missed bonus", "--ref", "OPS-1", "--period", week]
    assert runner.invoke(app, correct).stdout.strip() == "correction OPS-1: added"
    repeat = runner.invoke(app, correct)
    assert repeat.stdout.strip() == "correction OPS-1: already in the ledger"
    shown = json.loads(runner.invoke(app, ["payouts", "statement", handle, "--period", week, "--json"]).stdout)
    assert shown["totals"]["correction"] == "5.00"
    assert Decimal(shown["total"]) == sum(Decimal(line["amount"]) for line in shown["lines"])
    text = runner.invoke(app, ["payouts", "statement", handle, "--period", week]).stdout
    assert "missed bonus" in text and "min x" in text


def test_a_bad_period_or_correction_is_one_line(env) -> None:  # noqa: F811
    assert one_line_error(nightshift("payouts", "--period", "2026-W60", env=env)) == (
        "error: period '2026-W60': no such ISO week"
    )
    assert one_line_error(nightshift("payouts", "--period", "2026-W48", "--tz", "Mars/Base", env=env)) == (
        "error: unknown time zone 'Mars/Base'"
    )
    nightshift("project", "apply", str(SAMPLES / "spec.yaml"), env=env)
    nightshift("experts", "import", str(SAMPLES / "experts.jsonl"), env=env)
    correct = ["payouts", "correct", "expert-00000", "-p", "acme-scenarios", "--reason", "r", "--ref", "X"]
    assert one_line_error(nightshift(*correct, "--amount", "1.005", env=env)) == (
        "error: correction amount 1.005: give a non-zero amount in whole cents"
    )
    assert one_line_error(nightshift(*correct, "--amount", "ten", env=env)) == "error: amount 'ten' is not a number"
    assert one_line_error(nightshift(*correct[:2], "nobody", *correct[3:], "--amount", "1", env=env)) == (
        "error: no expert with handle 'nobody'"
    )
