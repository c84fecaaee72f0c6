"""Dynamic overlap: an item starts at the minimum overlap and gains one expert at a time while its
annotators disagree, up to the maximum; agreeing answers stop it at the minimum."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select, update

from expectations.agreement import check_agreement
from nightshift.dispatch.assignments import dispatch_batch
from nightshift.platform.db import transaction
from nightshift.platform.models import Assignment, Item, ItemResult
from nightshift.review.settle import ReviewReport, aggregate_ready_items
from nightshift.work.submissions import NewSubmission, record_submissions, start_assignments
from tests.nightshift.ingest.test_ingest import good_row, ingest_file

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)


def _answer(rating: int) -> dict:
    return {"rating": rating, "error_tags": [], "rationale": "r" * 50, "improved_prompt": "p" * 90}


def _one_item(sessions, tmp_path) -> int:
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(good_row("only")) + "\n")
    return ingest_file(sessions, path)[0]


def _round(sessions, batch_id: int, ratings: list[int]) -> tuple[int, str, int | None]:
    """Dispatch, have the open assignments answered with these ratings, accept them, aggregate.
    Returns (new assignments, item status, overlap target)."""
    with transaction(sessions) as session:
        made = dispatch_batch(session, batch_id, NOW).assignments
        open_ids = list(session.scalars(select(Assignment.id).where(Assignment.status == "assigned")))
        assert len(open_ids) == len(ratings)
        start_assignments(session, dict.fromkeys(open_ids, NOW - dt.timedelta(minutes=10)))
        record_submissions(session, [NewSubmission(a, _answer(r)) for a, r in zip(open_ids, ratings, strict=True)], NOW)
        session.execute(update(Assignment).where(Assignment.status == "submitted").values(status="accepted"))
        aggregate_ready_items(session, batch_id, ReviewReport(), check_agreement)
    with sessions() as session:
        item = session.scalars(select(Item)).one()
        return made, item.status, item.overlap_target


def test_disagreement_adds_one_expert_at_a_time_then_goes_to_an_adjudicator(sessions, project, tmp_path) -> None:
    batch_id = _one_item(sessions, tmp_path)
    assert _round(sessions, batch_id, [1, 4, 7]) == (3, "rework", 4)
    assert _round(sessions, batch_id, [1]) == (1, "rework", 5)
    # At the maximum (5) annotators who still disagree hand the item to an adjudicator.
    assert _round(sessions, batch_id, [7]) == (1, "adjudication", 5)
    with sessions() as session:
        item = session.scalars(select(Item)).one()
        holders = list(session.scalars(select(Assignment.expert_id)))
        assert session.scalars(select(ItemResult)).first() is None
    assert item.status_reason == "to adjudication: experts disagree (agreement under 0.5)"
    assert len(set(holders)) == 5
    with transaction(sessions) as session:
        # Dispatch leaves it alone: it is the adjudicators' now, not the annotators'.
        assert dispatch_batch(session, batch_id, NOW).assignments == 0


def test_agreeing_answers_stop_at_the_minimum_overlap(sessions, project, tmp_path) -> None:
    batch_id = _one_item(sessions, tmp_path)
    assert _round(sessions, batch_id, [5, 5, 6]) == (3, "passed", None)
    with transaction(sessions) as session:
        assert dispatch_batch(session, batch_id, NOW).assignments == 0
