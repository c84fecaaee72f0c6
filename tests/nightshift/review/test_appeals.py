"""Appeals: once per annotation, decided by an adjudicator who is neither its author nor the
reviewer it disputes; upheld, the annotation counts as right and the review as wrong, and the
deduction the rejection caused comes back; a gold answer overturned twice is flagged."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from nightshift.dispatch.assignments import dispatch_batch
from nightshift.payouts.ledger import pay_period
from nightshift.payouts.periods import Period
from nightshift.platform.db import transaction
from nightshift.platform.errors import NotFoundError
from nightshift.platform.models import (
    Assignment,
    Expert,
    ExpertLanguage,
    ExpertSkill,
    GoldAnswer,
    Item,
    ItemResult,
    PayoutEntry,
    Submission,
)
from nightshift.review import appeals
from nightshift.review.decisions import claim_review, decide_review
from nightshift.review.own_quality import own_quality
from nightshift.review.reliability import update_reliability
from nightshift.work.access import ConflictError
from nightshift.work.submissions import NewSubmission, record_submissions, start_assignments
from tests.nightshift.ingest.test_ingest import good_row, ingest_file

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
PERIOD = Period.week_of(NOW)


def _answer(rating: int) -> dict:
    return {"rating": rating, "error_tags": [], "rationale": "r" * 50, "improved_prompt": "p" * 90}


def one_answered_item(sessions, tmp_path, ratings: list[int], name: str = "only") -> tuple[int, list[int], list[int]]:
    """An item answered by three experts with these ratings: (item, experts, submissions) in answer order."""
    path = tmp_path / f"{name}.jsonl"
    path.write_text(json.dumps(good_row(name)) + "\n")
    batch = ingest_file(sessions, path)[0]
    with transaction(sessions) as session:
        dispatch_batch(session, batch, NOW)
        open_ids = list(
            session.scalars(
                select(Assignment.id)
                .join(Item, Item.id == Assignment.item_id)
                .where(Item.batch_id == batch, Assignment.status == "assigned")
                .order_by(Assignment.id)
            )
        )
        assert len(open_ids) == len(ratings)
        start_assignments(session, dict.fromkeys(open_ids, NOW - dt.timedelta(minutes=10)))
        record_submissions(session, [NewSubmission(a, _answer(r)) for a, r in zip(open_ids, ratings, strict=True)], NOW)
        rows = session.execute(
            select(Assignment.item_id, Assignment.expert_id, Submission.id)
            .join(Submission, Submission.assignment_id == Assignment.id)
            .where(Assignment.id.in_(open_ids))
            .order_by(Assignment.id)
        ).all()
    return rows[0][0], [r[1] for r in rows], [r[2] for r in rows]


def adjudicators(session, exclude: list[int], n: int) -> list[int]:
    return list(
        session.scalars(
            select(Expert.id)
            .join(ExpertSkill, ExpertSkill.expert_id == Expert.id)
            .join(ExpertLanguage, ExpertLanguage.expert_id == Expert.id)
            .where(
                Expert.tier == "adjudicator",
                ExpertSkill.skill == "finance",
                ExpertLanguage.language == "en",
                Expert.id.not_in(exclude),
            )
            .order_by(Expert.id)
            .limit(n)
        )
    )


def _ledger(session, expert_id: int) -> Decimal:
    return session.scalar(select(func.sum(PayoutEntry.amount)).where(PayoutEntry.expert_id == expert_id)) or Decimal(0)


def test_an_upheld_appeal_restores_score_and_pay_and_only_a_third_adjudicator_decides(
    sessions, project, tmp_path
) -> None:
    item, experts, submissions = one_answered_item(sessions, tmp_path, [2, 6, 6])
    author, other = experts[0], experts[1]
    with transaction(sessions) as session:
        reviewer, judge = adjudicators(session, experts, 2)
        session.execute(update(Assignment).where(Assignment.expert_id.in_(experts[1:])).values(status="accepted"))
        # The others' answer is the item's final one: the author's 2 disagrees with it.
        session.add(ItemResult(item_id=item, answer=_answer(6), method={}, agreement=1.0, submission_ids=[]))
        review = claim_review(session, reviewer, NOW)
        assert session.get_one(Assignment, review).subject_submission_id == submissions[0]
        decide_review(session, reviewer, review, "reject", "the rating ignores the covenant breach", now=NOW)
        pay_period(session, PERIOD, NOW + dt.timedelta(days=30))
        before = update_reliability(session, [author, reviewer])
        paid_before = _ledger(session, author)
    assert paid_before == 0  # time pay, then the whole of it taken back (rejected_pay_share 0)

    with transaction(sessions) as session:
        with pytest.raises(NotFoundError):
            appeals.file_appeal(session, other, submissions[0], "not mine but I object")
        with pytest.raises(appeals.AppealRefused, match="nothing to appeal"):
            appeals.file_appeal(session, other, submissions[1], "nothing was held against it")
        appeal = appeals.file_appeal(session, author, submissions[0], "The covenant allows 3.5x; I read it right.")
        with pytest.raises(ConflictError, match="heard once"):
            appeals.file_appeal(session, author, submissions[0], "again")
    mine = own_quality(sessions(), author)
    assert mine.corrections[0]["comment"] == "the rating ignores the covenant breach"
    assert mine.corrections[0]["appeal"]["status"] == "open"

    with transaction(sessions) as session:
        # The reviewer whose verdict it disputes neither sees it nor decides it; nor does the author.
        assert appeals.open_appeals(session, reviewer) == []
        with pytest.raises(appeals.AppealRefused, match="your own review"):
            appeals.decide_appeal(session, reviewer, appeal, True, "I was wrong")
        with pytest.raises(appeals.AppealRefused, match="adjudicator"):
            appeals.decide_appeal(session, author, appeal, True, "mine")
        assert [a.appeal_id for a in appeals.open_appeals(session, judge)] == [appeal]
    with transaction(sessions) as session:
        decided = appeals.decide_appeal(session, judge, appeal, True, "The context does say 3.5x.")
        assert decided.status == "upheld" and decided.flagged_gold_item is None
    with transaction(sessions) as session:
        with pytest.raises(ConflictError, match="upheld already"):
            appeals.decide_appeal(session, judge, appeal, False, "changed my mind")
        after = {e: session.scalar(select(Expert.reliability).where(Expert.id == e)) for e in (author, reviewer)}
        report = pay_period(session, PERIOD, NOW + dt.timedelta(days=31))
        assert report.refunds == 1
        assert pay_period(session, PERIOD, NOW + dt.timedelta(days=32)).refunds == 0  # once
        paid_after = _ledger(session, author)
    assert after[author] > before[author] and after[reviewer] < before[reviewer]
    assert paid_after > 0
    assert own_quality(sessions(), author).overall.agreed == 1


def test_an_appeal_upheld_before_the_pay_run_takes_nothing(sessions, project, tmp_path) -> None:
    _, experts, submissions = one_answered_item(sessions, tmp_path, [2, 6, 6])
    with transaction(sessions) as session:
        reviewer, judge = adjudicators(session, experts, 2)
        review = claim_review(session, reviewer, NOW)
        decide_review(session, reviewer, review, "reject", "wrong rating", now=NOW)
        appeal = appeals.file_appeal(session, experts[0], submissions[0], "it is right")
        appeals.decide_appeal(session, judge, appeal, True, "agreed")
        pay_period(session, PERIOD, NOW + dt.timedelta(days=30))
        kinds = set(session.scalars(select(PayoutEntry.kind).where(PayoutEntry.expert_id == experts[0])))
    assert kinds == {"time"}


def test_a_gold_answer_overturned_twice_is_flagged_and_can_be_corrected(sessions, project, tmp_path) -> None:
    item, experts, submissions = one_answered_item(sessions, tmp_path, [6, 6, 6])
    with transaction(sessions) as session:
        session.execute(update(Item).where(Item.id == item).values(is_gold=True))
        session.add(GoldAnswer(item_id=item, answer={"rating": 1}))
        session.execute(update(Assignment).where(Assignment.expert_id.in_(experts)).values(status="accepted"))
        (judge,) = adjudicators(session, experts, 1)
        first = appeals.file_appeal(session, experts[0], submissions[0], "6 is right: the answer is sound")
        second = appeals.file_appeal(session, experts[1], submissions[1], "the gold answer is wrong")
        assert appeals.appeal_view(session, first).gold == {"rating": 1}
        with pytest.raises(Exception, match="only an upheld appeal"):
            appeals.decide_appeal(session, judge, first, False, "no", correct_gold=True)
        assert appeals.decide_appeal(session, judge, first, True, "right").flagged_gold_item is None
        decided = appeals.decide_appeal(session, judge, second, True, "right again", correct_gold=True)
        assert decided.flagged_gold_item == item
        assert session.scalar(select(GoldAnswer.answer).where(GoldAnswer.item_id == item)) == {"rating": 6}
        flagged = appeals.flagged_gold(session)
    assert [(f["item_id"], f["upheld_appeals"]) for f in flagged] == [(item, 2)]
