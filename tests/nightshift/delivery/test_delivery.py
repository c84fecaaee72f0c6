"""Building deliveries: files, manifest, pages, lineage, versions and what changed between them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select, update

from expectations.agreement import check_agreement
from expectations.delivery_readiness import check_delivery_readiness
from expectations.submissions import check_submissions
from nightshift.delivery import build, outbox
from nightshift.delivery import records as delivery_records
from nightshift.delivery.webhooks import page_body
from nightshift.dispatch import assignments
from nightshift.platform.db import transaction
from nightshift.platform.errors import NightshiftError
from nightshift.platform.models import (
    Batch,
    Delivery,
    DeliveryMessage,
    Expert,
    GateRun,
    Item,
    ItemResult,
    utcnow,
)
from nightshift.projects.registry import project_spec
from nightshift.review import gates, settle
from nightshift.simulation import simulate
from tests.conftest import SAMPLES
from tests.nightshift.ingest.test_ingest import ingest_file


def run_to_passed(sessions, path: Path = SAMPLES / "items.jsonl", project: str = "acme-scenarios") -> int:
    """The core's own pipeline up to a passed batch: dispatch, simulated experts, the review gate."""
    batch_id, _ = ingest_file(sessions, path, project)
    for _ in range(8):
        with transaction(sessions) as session:
            assignments.dispatch_batch(session, batch_id, utcnow())
        with sessions() as session:
            open_ids = simulate.open_assignments(session, batch_id)
        with transaction(sessions) as session:
            simulate.simulate_work(session, batch_id, open_ids)
        simulate.simulate_adjudications(sessions, batch_id)
        with sessions() as session:
            rows = gates.submissions_to_gate(session, batch_id)
            spec = project_spec(session, session.get_one(Batch, batch_id).project_id).project
        outcome = check_submissions(rows, spec)
        with transaction(sessions) as session:
            gates.record_gate(session, batch_id, outcome)
            gates.apply_submission_gate(session, outcome, rows)
            settle.aggregate_ready_items(session, batch_id, settle.ReviewReport(), check_agreement)
            if settle.settle_batch(session, batch_id) == "passed":
                return batch_id
    raise AssertionError("the batch did not pass")


def prepare(sessions, batch_id: int, options: build.DeliveryOptions) -> int | None:
    delivery_id, _ = outbox.prepare_delivery(sessions, batch_id, options, check_delivery_readiness, gates.record_gate)
    return delivery_id


def mark_sent(sessions) -> None:
    """Stand in for the webhook round trip (tested on its own) so the delivery settles."""
    with transaction(sessions) as session:
        session.execute(update(DeliveryMessage).values(status="delivered"))
        outbox.settle_deliveries(session)


@pytest.fixture
def passed_batch(sessions, project) -> int:
    return run_to_passed(sessions)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_delivery_is_jsonl_and_parquet_with_a_manifest_of_counts_gates_and_checksums(
    sessions, passed_batch, tmp_path
) -> None:
    options = build.DeliveryOptions(directory=tmp_path, link_base="https://files.nightshift.example/d")
    delivery_id = prepare(sessions, passed_batch, options)
    with sessions() as session:
        record = session.get_one(Delivery, delivery_id)
        manifest = record.manifest
        assert session.get_one(Batch, passed_batch).status == "delivering"
        delivered = session.scalar(
            select(func.count()).select_from(Item).where(Item.status == "passed", Item.is_gold.is_(False))
        )
        pages = session.scalars(select(DeliveryMessage).order_by(DeliveryMessage.page)).all()
    folder = tmp_path / "acme" / "acme-scenarios" / f"batch-{passed_batch}" / "v1"
    # No model answers in this project: no training files, but the card that lays out the records.
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "manifest.json",
        "records.jsonl",
        "records.parquet",
    ]
    assert json.loads((folder / "manifest.json").read_text()) == manifest
    assert manifest["counts"] == {"records": delivered, "pages": len(pages)}
    assert (manifest["client"], manifest["project"], manifest["version"]) == ("acme", "acme-scenarios", 1)
    assert manifest["event"] == "batch.delivered" and manifest["spec_version"] == 1
    [gate] = manifest["gates"]
    assert gate["gate"] == "delivery_readiness" and gate["success"]
    files = {f["name"]: f for f in manifest["files"]}
    for name in ("records.jsonl", "records.parquet", "README.md"):
        assert files[name]["sha256"] == _sha256(folder / name)
        assert files[name]["uri"] == f"https://files.nightshift.example/d/acme/acme-scenarios/batch-1/v1/{name}"
    lines = [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]
    table = pq.read_table(folder / "records.parquet")
    assert len(lines) == table.num_rows == delivered
    assert table.column("external_id").to_pylist() == [r["external_id"] for r in lines]
    assert json.loads(table.column("answer")[0].as_py()) == lines[0]["answer"]
    # Nothing of the staging folder is left behind.
    assert [p.name for p in folder.parent.iterdir()] == ["v1"]


def test_records_carry_lineage_by_pseudonym_and_nothing_personal(sessions, passed_batch, tmp_path) -> None:
    prepare(sessions, passed_batch, build.DeliveryOptions(directory=tmp_path))
    text = next(tmp_path.rglob("records.jsonl")).read_text()
    with sessions() as session:
        personal = [(e.email, e.name, e.handle) for e in session.scalars(select(Expert))]
        # Every gate the batch passed through: submissions, gold and agreement, in order.
        gate_runs = list(
            session.scalars(select(GateRun.id).where(GateRun.gate != "delivery_readiness").order_by(GateRun.id))
        )
    assert [value for row in personal for value in row if value in text] == []
    records = [json.loads(line) for line in text.splitlines()]
    assert {tuple(sorted(r)) for r in records} == {tuple(sorted(delivery_records.RECORD_FIELDS))}
    first = records[0]
    lineage = first["lineage"]
    assert lineage["input_hash"] == first["input_hash"] and lineage["gate_runs"] == gate_runs
    assert len(lineage["experts"]) >= 2 and all(e.startswith("exp_") for e in lineage["experts"])
    accepted = [d["expert"] for d in lineage["decisions"] if d["decision"] == "accepted"]
    assert accepted == lineage["experts"]
    # Careless experts were rejected somewhere in the batch, and the lineage says so.
    assert any(d["decision"] == "rejected" for r in records for d in r["lineage"]["decisions"])


def test_postgresql_builds_the_same_records_as_the_portable_path(sessions, passed_batch) -> None:
    """The server-side lineage (the fast path on PostgreSQL) against the one built in Python."""
    with sessions() as session:
        if session.get_bind().dialect.name != "postgresql":
            pytest.skip("the server-side path is PostgreSQL's")
        in_sql = [
            r for chunk in delivery_records.iter_records_in_sql(session, passed_batch, chunk_rows=7) for r in chunk
        ]
    with sessions() as session:
        in_python = [
            r for chunk in delivery_records.iter_records_in_python(session, passed_batch, chunk_rows=7) for r in chunk
        ]
    assert len(in_sql) > 7 and in_sql == in_python
    # Reviewers rejected somebody: decisions of every kind were compared, not only acceptances.
    assert any('"decision":"rejected"' in r.lineage_json for r in in_sql)


def test_pages_stay_under_the_byte_cap_and_carry_every_record_exactly_once(sessions, passed_batch, tmp_path) -> None:
    cap = 24 * 1024
    options = build.DeliveryOptions(directory=tmp_path, page_bytes=cap)
    delivery_id = prepare(sessions, passed_batch, options)
    with sessions() as session:
        record = session.get_one(Delivery, delivery_id)
        pages = session.scalars(select(DeliveryMessage).order_by(DeliveryMessage.page)).all()
    manifest_json = json.dumps(record.manifest, sort_keys=True)
    bodies = [page_body("batch.delivered", manifest_json, p.page, len(pages), p.records) for p in pages]
    assert len(pages) > 3
    assert all(len(body.encode()) <= cap for body in bodies)
    ids = [r["external_id"] for body in bodies for r in json.loads(body)["records"]]
    assert len(ids) == len(set(ids)) == record.record_count
    assert [p.record_count for p in pages] == [len(json.loads(p.records)) for p in pages]
    assert len({p.webhook_id for p in pages}) == len(pages)


def test_a_failed_readiness_gate_holds_the_delivery_and_leaves_no_files(sessions, passed_batch, tmp_path) -> None:
    with transaction(sessions) as session:
        # A passed item whose final answer went missing: the gate must notice it is not delivered.
        lost = session.scalars(select(Item.id).where(Item.status == "passed", Item.is_gold.is_(False))).first()
        session.execute(ItemResult.__table__.delete().where(ItemResult.item_id == lost))
    options = build.DeliveryOptions(directory=tmp_path / "store")
    delivery_id, outcome = outbox.prepare_delivery(
        sessions, passed_batch, options, check_delivery_readiness, gates.record_gate
    )
    assert delivery_id is None and not outcome.success
    assert outcome.failures == {lost: "item missing from the delivery"}
    with sessions() as session:
        assert session.get_one(Batch, passed_batch).status == "passed"
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0
        assert session.scalars(select(GateRun.success).where(GateRun.gate == "delivery_readiness")).all() == [False]
    assert [p for p in (tmp_path / "store").rglob("*") if p.is_file()] == []


def test_a_redelivery_is_a_new_version_that_says_what_changed(sessions, passed_batch, tmp_path) -> None:
    options = build.DeliveryOptions(directory=tmp_path)
    prepare(sessions, passed_batch, options)
    mark_sent(sessions)
    with transaction(sessions) as session:
        changed = session.scalars(
            select(ItemResult).join(Item).where(Item.is_gold.is_(False)).order_by(ItemResult.item_id)
        ).first()
        changed.answer = changed.answer | {"rating": 1 if changed.answer["rating"] != 1 else 2}
        external_id = session.get_one(Item, changed.item_id).external_id
        outbox.request_redelivery(session, passed_batch, "client asked after a fix", "test")
    second = prepare(sessions, passed_batch, options)
    with sessions() as session:
        v2 = session.get_one(Delivery, second)
        first_ids = set(
            session.scalars(select(DeliveryMessage.webhook_id).where(DeliveryMessage.delivery_id != second))
        )
        second_ids = set(
            session.scalars(select(DeliveryMessage.webhook_id).where(DeliveryMessage.delivery_id == second))
        )
    assert (v2.version, v2.reason, v2.manifest["event"]) == (2, "client asked after a fix", "batch.redelivered")
    total = v2.record_count
    assert v2.manifest["changes"] == {
        "previous_version": 1,
        "added": 0,
        "changed": 1,
        "unchanged": total - 1,
        "removed": 0,
    }
    assert first_ids.isdisjoint(second_ids)
    folder = Path(v2.file_path).parent
    assert [json.loads(line) for line in (folder / "changes.jsonl").read_text().splitlines()] == [
        {"external_id": external_id, "change": "changed"}
    ]
    changes = {
        json.loads(line)["external_id"]: json.loads(line)["change"]
        for line in Path(v2.file_path).read_text().splitlines()
    }
    assert changes[external_id] == "changed" and list(changes.values()).count("unchanged") == total - 1
    # Both versions stay in the store, each whole.
    assert (folder.parent / "v1" / "records.jsonl").exists()


def test_a_redelivery_refuses_a_batch_not_yet_delivered(sessions, passed_batch) -> None:
    with transaction(sessions) as session, pytest.raises(NightshiftError, match="only a delivered or failed"):
        outbox.request_redelivery(session, passed_batch, "why", "test")


def test_a_previous_version_whose_file_was_tampered_with_is_refused(sessions, passed_batch, tmp_path) -> None:
    options = build.DeliveryOptions(directory=tmp_path)
    first = prepare(sessions, passed_batch, options)
    mark_sent(sessions)
    with transaction(sessions) as session:
        path = Path(session.get_one(Delivery, first).file_path)
        outbox.request_redelivery(session, passed_batch, "again", "test")
    path.write_text(path.read_text().replace('"rating"', '"ratinG"', 1))
    with pytest.raises(NightshiftError, match="fails its checksum"):
        prepare(sessions, passed_batch, options)


def test_reaggregation_with_new_reliabilities_sends_a_version_with_the_changes(
    sessions, passed_batch, tmp_path
) -> None:
    options = build.DeliveryOptions(directory=tmp_path / "store")
    prepare(sessions, passed_batch, options)
    mark_sent(sessions)
    with transaction(sessions) as session:
        settle.reaggregate_batch(session, passed_batch, "test")
    if prepare(sessions, passed_batch, options):
        mark_sent(sessions)
    with transaction(sessions) as session:
        assert settle.reaggregate_batch(session, passed_batch, "test") == 0  # nothing moved: nothing to send
        assert session.get_one(Batch, passed_batch).status == "delivered"
        # New gold evidence spreads the pool's reliabilities: free text follows the most reliable.
        for expert in session.scalars(select(Expert)):
            expert.reliability = round(0.3 + (expert.id * 7 % 60) / 100, 4)
    with transaction(sessions) as session:
        changed = settle.reaggregate_batch(session, passed_batch, "test")
        assert changed > 0 and session.get_one(Batch, passed_batch).status == "passed"
    second = prepare(sessions, passed_batch, options)
    with sessions() as session:
        v2 = session.get_one(Delivery, second)
    assert v2.reason == f"re-aggregated: {changed} final answers changed"
    assert v2.manifest["changes"]["changed"] == changed
