"""ingest → dispatch → simulate → review → deliver through the CLI, on a real Prefect API and database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select
from typer.testing import CliRunner

from app.cli import app
from nightshift.platform.db import make_engine, make_sessionmaker
from nightshift.platform.models import Delivery, DeliveryMessage, Expert, GateRun, Item, ItemResult
from tests.conftest import SAMPLES


@pytest.fixture
def cli(app_env, prefect_api):
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    return run


@pytest.mark.slow(95)
def test_the_whole_pipeline_through_the_cli(cli, app_env, receiver, slack, tmp_path: Path) -> None:
    spec = yaml.safe_load((SAMPLES / "spec.yaml").read_text())
    spec["client"]["webhook_url"] = receiver.url
    # The simulated experts work 600 times faster than real ones; the time gate scales with them.
    spec["project"]["gates"]["min_time_on_task_seconds"] = 1
    # Reading speed is not compressed with them: that check is off here.
    spec["project"]["gates"]["reading_chars_per_second"] = None
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec))

    assert "spec v1, changed" in cli("project", "apply", str(spec_file))
    assert "60 experts imported (60 new)" in cli("experts", "import", str(SAMPLES / "experts.jsonl"))
    [ingested] = json.loads(cli("ingest", str(SAMPLES / "items.jsonl"), "-p", "acme-scenarios", "--json"))["files"]
    assert (ingested["batch_id"], ingested["accepted"], ingested["quarantined"]) == (1, 240, 0)

    status = ""
    for _ in range(8):
        cli("dispatch", "--batch", "1")
        # Each simulated expert keeps four tasks open at once, as the demo's do.
        cli("simulate", "--batch", "1", "--tasks-at-once", "4")
        status = json.loads(cli("review", "--batch", "1", "--json"))["batch_status"]
        if status == "passed":
            break
    assert status == "passed"
    delivered = json.loads(cli("deliver", "--batch", "1", "--json"))
    assert delivered["settled"][0]["status"] == "delivered"
    [status_row] = json.loads(cli("status", "--json"))
    assert status_row["deadline"] and status_row["projected_finish"] and not status_row["at_risk"]
    assert float(status_row["cost_so_far_usd"]) > 0 and status_row["budget_usd"] == "50000"
    table = cli("status").splitlines()
    assert "cost / budget" in table[0] and "projected finish" in table[0]
    assert f"${status_row['cost_so_far_usd']} / $50000" in table[1]

    [again] = json.loads(cli("ingest", str(SAMPLES / "items.jsonl"), "-p", "acme-scenarios", "--json"))["files"]
    assert (again["batch_id"], again["skipped"], again["accepted"]) == (1, True, 0)
    forced = cli("ingest", str(SAMPLES / "items.jsonl"), "-p", "acme-scenarios", "--force", "--json")
    [forced] = json.loads(forced)["files"]
    assert (forced["batch_id"], forced["accepted"], forced["duplicates"]) == (1, 0, 240)

    engine = make_engine(app_env)
    with make_sessionmaker(engine)() as session:
        by_status = dict(session.execute(select(Item.status, func.count()).group_by(Item.status)).all())
        assert by_status == {"delivered": 228, "passed": 12}  # gold items are ours: never delivered
        assert session.scalar(select(func.count()).select_from(ItemResult)) == 240
        gates = session.scalars(select(GateRun)).all()
        # Gold judges only experts with enough gold answers: in a batch this small, maybe nobody.
        assert {"submissions", "agreement", "delivery_readiness"} <= {g.gate for g in gates}
        assert {g.gate for g in gates} <= {"submissions", "gold", "agreement", "delivery_readiness"}
        assert any(not g.success for g in gates if g.gate == "submissions")  # careless experts were caught
        assert session.scalars(select(Delivery.status)).all() == ["delivered"]
        assert set(session.scalars(select(DeliveryMessage.status))) == {"delivered"}
        emails = set(session.scalars(select(Expert.email)))
        names = set(session.scalars(select(Expert.name)))
    engine.dispose()

    records = receiver.log.unique_records()
    assert receiver.log.rejected == 0
    assert len(records) == 228
    raw = json.dumps([m.body for m in receiver.log.verified])
    assert not any(email in raw for email in emails)
    assert not any(f'"{name}"' in raw for name in names)
    record = next(iter(records.values()))
    assert set(record["answer"]) == {"rating", "error_tags", "rationale", "improved_prompt"}
    assert all(e.startswith("exp_") for e in record["lineage"]["experts"])
    manifest = receiver.log.verified[0].body["manifest"]
    assert manifest["counts"]["records"] == 228 and manifest["client"] == "acme"
    delivered_file = Path(delivered["settled"][0]["file"])
    assert len(delivered_file.read_text().splitlines()) == 228

    # Ops heard about the rejected work; the client's channel heard about the delivery.
    by_channel = {(m["channel"], m["text"].splitlines()[0]) for m in slack.messages}
    assert ("#nightshift-ops", "Gate submissions failed for batch 1") in by_channel
    assert ("#acme-deliveries", "Delivered batch 1 to acme") in by_channel
    assert all(m["blocks"] and m["text"] for m in slack.messages)
    sent = json.dumps(slack.messages)
    assert "xoxb-" not in sent and "whsec_" not in sent
    assert not any(email in sent for email in emails)


def test_a_failed_flow_run_alerts_ops_with_a_link_to_the_run(app_env, prefect_api, slack, tmp_path) -> None:
    from flows.ingest import IngestParams, ingest_flow

    state = ingest_flow(IngestParams(project="acme-scenarios", source=str(tmp_path / "gone.jsonl")), return_state=True)
    assert state.is_failed()
    [message] = slack.messages
    assert message["channel"] == "#nightshift-ops"
    assert message["text"].startswith("Flow ingest failed")
    assert "/runs/flow-run/" in message["text"] and "file not found" in message["text"]
