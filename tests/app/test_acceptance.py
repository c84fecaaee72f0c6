"""Acceptance: a client accepts or rejects delivered records over the client API; a rejection is
settled by an adjudicator at no charge and redelivered as a new version with the client's reason in
its change log; when the window ends the rest is accepted."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select

from nightshift.delivery import acceptance, build
from nightshift.payouts.costs import batch_costs
from nightshift.platform.db import transaction
from nightshift.platform.errors import NightshiftError
from nightshift.platform.models import Assignment, Batch, Delivery, Item, ItemResult, RecordVerdict, Submission
from nightshift.projects.registry import apply_spec
from nightshift.projects.spec import ProjectSpec
from nightshift.reports.experts import quality_table
from nightshift.review import settle
from nightshift.simulation import simulate
from tests.nightshift.delivery.test_delivery import mark_sent, prepare, run_to_passed

REASON = "The rating ignores the covenant breach stated in the context."


def _with_window(spec: ProjectSpec, days: int) -> ProjectSpec:
    return spec.model_copy(update={"project": spec.project.model_copy(update={"acceptance_days": days})})


def test_a_rejected_record_is_reworked_unbilled_and_redelivered_and_the_window_accepts_the_rest(
    sessions, project, world, tmp_path: Path
) -> None:
    with transaction(sessions) as session:
        apply_spec(session, _with_window(project, 7))
    batch_id = run_to_passed(sessions)
    store = build.DeliveryOptions(tmp_path / "store")
    prepare(sessions, batch_id, store)
    mark_sent(sessions)
    with sessions() as session:
        delivered = list(
            session.scalars(select(Item.external_id).where(Item.batch_id == batch_id, Item.status == "delivered"))
        )
        cost_before = batch_costs(session, [batch_id])[batch_id]
    good, bad = delivered[0], delivered[1]

    with world.http(world.client_keys["acme"]) as http:
        window = http.get(f"/api/client/batches/{batch_id}/acceptance").json()
        no_reason = http.post(
            f"/api/client/batches/{batch_id}/verdicts", json={"verdicts": [{"external_id": bad, "verdict": "reject"}]}
        )
        nul = http.post(
            f"/api/client/batches/{batch_id}/verdicts",
            json={"verdicts": [{"external_id": "a\u0000b", "verdict": "reject", "reason": "x"}]},
        )
        given = http.post(
            f"/api/client/batches/{batch_id}/verdicts",
            json={
                "verdicts": [
                    {"external_id": good, "verdict": "accept"},
                    {"external_id": bad, "verdict": "reject", "reason": REASON},
                    {"external_id": "not-ours", "verdict": "accept"},
                ]
            },
        )
        again = http.post(
            f"/api/client/batches/{batch_id}/verdicts", json={"verdicts": [{"external_id": good, "verdict": "accept"}]}
        )
    with world.http(world.client_keys["globex"]) as http:
        foreign = http.post(
            f"/api/client/batches/{batch_id}/verdicts", json={"verdicts": [{"external_id": good, "verdict": "accept"}]}
        )
    assert window["version"] == 1 and window["undecided"] == len(delivered)
    assert no_reason.status_code == 400 and "a rejection needs a reason" in no_reason.json()["detail"]
    assert nul.status_code == 422
    assert given.status_code == 200, given.text
    assert given.json() == {"version": 1, "accepted": 1, "rejected": 1, "already_decided": [], "unknown": ["not-ours"]}
    # The batch is being reworked: verdicts wait for the version that carries it.
    assert again.status_code == 400 and "verdicts wait for its next delivery" in again.json()["detail"]
    assert foreign.status_code == 404

    with sessions() as session:
        assert session.get_one(Batch, batch_id).status == "in_review"
        item = session.scalars(select(Item).where(Item.external_id == bad)).one()
        assert item.status == "adjudication" and REASON in (item.status_reason or "")
        assert session.get(ItemResult, item.id) is None
    simulate.simulate_adjudications(sessions, batch_id)
    with transaction(sessions) as session:
        settle.settle_adjudications(session, batch_id)
        assert settle.settle_batch(session, batch_id) == "passed"
        [ruling] = session.scalars(
            select(Assignment).where(Assignment.item_id == item.id, Assignment.role == "adjudicate")
        ).all()
        assert ruling.billable is False and (ruling.worked_seconds or 0) > 0
        # The adjudicator's answer alone settles a rejected record, not one vote among the annotators'.
        ruled = session.scalars(select(Submission).where(Submission.assignment_id == ruling.id)).one()
        settled = session.get_one(ItemResult, item.id)
        assert settled.answer["rating"] == ruled.answer["rating"]
        assert settled.submission_ids == [ruled.id]
        assert batch_costs(session, [batch_id])[batch_id] == cost_before, "the client pays nothing for it"

    prepare(sessions, batch_id, store)
    with sessions() as session:
        v2 = session.scalars(select(Delivery).where(Delivery.batch_id == batch_id, Delivery.version == 2)).one()
    assert v2.manifest["event"] == "batch.reworked" and v2.manifest["rejections_reworked"] == 1
    assert v2.reason == "reworked after the client rejected 1 record"
    changes = [orjson.loads(line) for line in (Path(v2.file_path).parent / "changes.jsonl").read_bytes().splitlines()]
    [reworked] = [c for c in changes if c["external_id"] == bad]
    assert reworked["rejection"] == REASON and reworked["change"] in ("changed", "unchanged")
    mark_sent(sessions)

    now = dt.datetime.now(dt.UTC)
    with transaction(sessions) as session:
        assert session.scalars(
            select(RecordVerdict.redelivered_version).where(RecordVerdict.verdict == "rejected")
        ).all() == [2]
        assert acceptance.close_windows(session, now) == {}, "the window of version 2 is still open"
        assert acceptance.close_windows(session, now + dt.timedelta(days=8)) == {batch_id: len(delivered)}
        assert acceptance.close_windows(session, now + dt.timedelta(days=9)) == {}, "closed once"
        summary = acceptance.summary(session, batch_id)
        assert (summary["version"], summary["accepted"], summary["undecided"]) == (2, len(delivered), 0)
        with pytest.raises(NightshiftError, match="acceptance window of version 2 closed"):
            acceptance.record_verdicts(
                session, batch_id, [acceptance.Verdict(good, "accept")], "acme", now + dt.timedelta(days=8)
            )
        rates = acceptance.rates(session, session.get_one(Batch, batch_id).project_id)
        # Ops read the clients' verdicts beside each expert's quality estimate.
        table = quality_table(session, batch_id)
        assert sum(r["rejected by clients"] for r in table) == sum(e["rejected"] for e in rates["experts"].values()) > 0
        assert sum(r["accepted by clients"] for r in table) > 0
    assert (rates["accepted"], rates["rejected"]) == (1 + len(delivered), 1)
    assert rates["experts"] and all(e["records"] >= e["rejected"] for e in rates["experts"].values())
    assert json.dumps(rates)
