"""Retention: past its client's period a delivered batch's content is purged; its ids, hashes, the
deliveries' manifests and the audit trail stay, and nothing of its content is left anywhere."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select, text, update
from typer.testing import CliRunner

from app.cli import app
from nightshift.delivery import build, outbox, retention
from nightshift.platform.db import make_engine, make_sessionmaker, transaction
from nightshift.platform.errors import NightshiftError
from nightshift.platform.models import (
    AccessLog,
    Assignment,
    AuditLog,
    Base,
    Batch,
    Delivery,
    Item,
    ItemResult,
    Submission,
)
from nightshift.projects.registry import apply_spec
from nightshift.projects.spec import ProjectSpec
from nightshift.review import settle
from nightshift.review.reliability import gather_evidence
from tests.nightshift.delivery.test_delivery import mark_sent, prepare, run_to_passed


def _with_retention(spec: ProjectSpec, days: int) -> ProjectSpec:
    return spec.model_copy(update={"client": spec.client.model_copy(update={"retention_days": days})})


def _delivered(sessions, spec: ProjectSpec, folder: Path) -> int:
    with transaction(sessions) as session:
        apply_spec(session, _with_retention(spec, 30))
    batch_id = run_to_passed(sessions)
    assert prepare(sessions, batch_id, build.DeliveryOptions(directory=folder)) is not None
    mark_sent(sessions)
    return batch_id


def _every_text(session) -> str:
    """Every row of every table, as text: what a purge must have left no content in."""
    dump = []
    for table in Base.metadata.sorted_tables:
        dump += [repr(tuple(row)) for row in session.execute(text(f'SELECT * FROM "{table.name}"'))]
    return "\n".join(dump)


def test_a_purge_leaves_ids_hashes_manifests_and_audit_and_nothing_else(sessions, project, tmp_path) -> None:
    batch_id = _delivered(sessions, project, tmp_path / "deliveries")
    with sessions() as session:
        # The client received the records: one access row for the delivered version.
        [received] = session.scalars(select(AccessLog).where(AccessLog.actor_kind == "client")).all()
        assert (received.actor, received.action, received.batch_id) == ("acme", "delivery", batch_id)
        assert received.detail is not None and received.detail["version"] == 1
        before = {i.id: (i.external_id, i.content_hash) for i in session.scalars(select(Item))}
        prompts = [i.payload["prompt"] for i in session.scalars(select(Item).where(Item.batch_id == batch_id))]
        answers = {s.id: s.answer for s in session.scalars(select(Submission))}
        # The experts' own words: free-text answers long enough to be unmistakable.
        written = sorted({v for a in answers.values() for v in a.values() if isinstance(v, str) and len(v) > 25})
        assert written, "the simulated experts wrote free text"
        [delivery] = session.scalars(select(Delivery)).all()
        folder, manifest = Path(delivery.file_path).parent, delivery.manifest
        assert all(p in _every_text(session) for p in prompts[:3])
    assert folder.exists()
    now = dt.datetime.now(dt.UTC)
    with sessions() as session:
        assert retention.due(session, now) == [], "delivered today: 30 days to go"
        [due] = retention.due(session, now + dt.timedelta(days=31))
    assert (due.batch_id, due.client, due.retention_days) == (batch_id, "acme", 30)

    with sessions() as session:
        experts = list(session.scalars(select(Assignment.expert_id).distinct()))
        before_evidence = gather_evidence(session, experts)
        assert sum(e.agreement_seen + e.gold_seen for e in before_evidence.values()) > 0
    with transaction(sessions) as session:
        purged = retention.purge_batch(session, batch_id, now + dt.timedelta(days=31), "test")
    assert purged is not None and purged.rows["items"] == len(before) and purged.rows["submissions"] == len(answers)
    assert retention.remove_folders(purged.folders) == 1 and not folder.exists()

    with sessions() as session:
        # A purged batch's hashed answers are no evidence of anyone's quality, right or wrong.
        after = gather_evidence(session, experts)
        assert sum(e.agreement_seen + e.gold_seen + e.reviews_seen for e in after.values()) == 0
        everything = _every_text(session)
        assert not [p for p in prompts if p in everything], "no item's text is left in any table"
        assert not [w for w in written if w in everything], "no expert's words are left in any table"
        assert {i.id: (i.external_id, i.content_hash) for i in session.scalars(select(Item))} == before
        assert {i.payload.__len__() for i in session.scalars(select(Item))} == {0}
        for submission in session.scalars(select(Submission)):
            assert submission.answer == retention.purged_answer(answers[submission.id])
        assert all(r.answer["purged"] for r in session.scalars(select(ItemResult)))
        [kept] = session.scalars(select(Delivery)).all()
        assert kept.manifest == manifest and kept.file_sha256 == delivery.file_sha256
        audit = session.scalars(select(AuditLog).where(AuditLog.entity == "batch", AuditLog.entity_id == batch_id))
        assert any(a.detail and a.detail.get("purged", {}).get("items") == len(before) for a in audit)

    # Once is enough: a second run finds nothing due and claims nothing.
    with transaction(sessions) as session:
        assert retention.due(session, now + dt.timedelta(days=60)) == []
        assert retention.purge_batch(session, batch_id, now, "test") is None
        with pytest.raises(NightshiftError, match=r"purged on .* under its client's retention"):
            outbox.request_redelivery(session, batch_id, "again", "test")
        with pytest.raises(NightshiftError, match="purged under its client's retention"):
            settle.reaggregate_batch(session, batch_id, "test")


def test_a_client_without_retention_keeps_everything(sessions, project, tmp_path) -> None:
    batch_id = _delivered(sessions, project, tmp_path / "deliveries")
    with transaction(sessions) as session:
        apply_spec(session, project)  # the sample client sets no retention_days
        assert retention.due(session, dt.datetime.now(dt.UTC) + dt.timedelta(days=3650)) == []
        assert session.get_one(Batch, batch_id).purged_at is None


def test_the_purge_command_lists_then_purges_what_is_due(app_env, prefect_api, sample_spec, tmp_path) -> None:
    from nightshift.experts.registry import import_experts, parse_experts
    from tests.conftest import SAMPLES

    sessions = make_sessionmaker(make_engine(app_env))
    with transaction(sessions) as session:
        import_experts(session, parse_experts(SAMPLES / "experts.jsonl")[0])
    batch_id = _delivered(sessions, sample_spec, tmp_path / "deliveries")
    with transaction(sessions) as session:
        session.execute(update(Delivery).values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=40)))

    def cli(*args: str) -> str:
        result = CliRunner().invoke(app, ["retention", "purge", *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    assert f"batch {batch_id} (acme)" in cli("--dry-run") and "kept 30 days: due" in cli("--dry-run")
    with sessions() as session:
        assert session.get_one(Batch, batch_id).purged_at is None, "a dry run purges nothing"
    assert f"batch {batch_id} (acme)" in (out := cli()) and "purged (" in out
    assert cli() == "no batch is purged\n"
