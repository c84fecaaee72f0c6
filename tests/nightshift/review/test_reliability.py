from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from nightshift.dispatch.assignments import dispatch_batch, expire_overdue
from nightshift.experts.registry import RELIABILITY_PRIOR
from nightshift.platform.db import transaction
from nightshift.platform.models import Assignment, Expert, ExpertRoute, GoldAnswer, Item
from nightshift.reports.experts import expert_profile
from nightshift.review.reliability import PRIOR, Evidence, matcher, update_reliability
from nightshift.work.submissions import NewSubmission, record_submissions, start_assignments
from tests.conftest import SAMPLES
from tests.nightshift.ingest.test_ingest import ingest_file

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)


def test_a_new_expert_starts_at_the_prior_and_few_answers_move_it_little() -> None:
    assert Evidence().estimate() == pytest.approx(PRIOR) == RELIABILITY_PRIOR
    one_wrong_gold = Evidence(gold_seen=1).estimate()
    assert 0.5 < one_wrong_gold < PRIOR  # one miss on gold is not a verdict
    assert Evidence(gold_seen=50, gold_correct=50).estimate() > 0.95
    assert Evidence(gold_seen=50).estimate() < 0.1
    assert Evidence(missed=3).estimate() < PRIOR


def test_an_answer_matches_a_reference_within_a_step_on_scales_and_half_the_tags(sample_spec) -> None:
    gold = {"rating": 5, "error_tags": ["reasoning_flaw", "factual_error"]}
    project = sample_spec.project
    matches = matcher(project)
    assert matches({"rating": 4, "error_tags": ["reasoning_flaw"], "rationale": "x"}, gold)
    assert not matches({"rating": 2, "error_tags": ["reasoning_flaw"]}, gold)
    assert not matches({"rating": 5, "error_tags": ["unsafe"]}, gold)


def _gold_assignments(sessions) -> list[tuple[int, int, dict]]:
    with sessions() as session:
        return list(
            session.execute(
                select(Assignment.id, Assignment.expert_id, GoldAnswer.answer)
                .join(Item, Item.id == Assignment.item_id)
                .join(GoldAnswer, GoldAnswer.item_id == Item.id)
            )
        )


def test_gold_answers_move_reliability_and_the_routing_index_follows(sessions, project) -> None:
    batch_id, _ = ingest_file(sessions, SAMPLES / "items.jsonl")
    with transaction(sessions) as session:
        dispatch_batch(session, batch_id, NOW)
    gold = _gold_assignments(sessions)
    assert gold
    right, wrong = gold[0], next(g for g in gold if g[1] != gold[0][1])
    wrong_answer = dict(wrong[2], rating=1 if wrong[2]["rating"] > 3 else 7)
    with transaction(sessions) as session:
        start_assignments(session, {right[0]: NOW - dt.timedelta(minutes=10), wrong[0]: NOW - dt.timedelta(minutes=10)})
        record_submissions(session, [NewSubmission(right[0], right[2]), NewSubmission(wrong[0], wrong_answer)], NOW)
        session.execute(update(Assignment).where(Assignment.status == "submitted").values(status="accepted"))
        values = update_reliability(session, [right[1], wrong[1]])
    assert values[right[1]] > PRIOR > values[wrong[1]]
    with sessions() as session:
        routed = dict(
            session.execute(
                select(ExpertRoute.expert_id, ExpertRoute.reliability).where(
                    ExpertRoute.expert_id.in_([right[1], wrong[1]])
                )
            ).all()
        )
        handle = session.get_one(Expert, wrong[1]).handle
        profile = expert_profile(session, handle)
    assert routed == {right[1]: values[right[1]], wrong[1]: values[wrong[1]]}
    assert profile["gold"] == {"answered": 1, "correct": 0}


def test_a_missed_deadline_lowers_reliability(sessions, project) -> None:
    batch_id, _ = ingest_file(sessions, SAMPLES / "items.jsonl")
    with transaction(sessions) as session:
        dispatch_batch(session, batch_id, NOW)
        expire_overdue(session, NOW + dt.timedelta(days=2))
    with sessions() as session:
        late = session.scalars(select(Expert).where(Expert.missed_count > 0)).all()
    assert late and all(e.reliability < PRIOR for e in late)
