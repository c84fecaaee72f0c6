"""Quality per dollar on small hand-made cases: who is paused, what settles an item, what a pause
sends back, adjudication in rounds, and items nobody could take yet."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import aliased

from expectations.agreement import check_agreement
from expectations.gold import check_gold
from nightshift.dispatch.assignments import dispatch_batch
from nightshift.experts.registry import ExpertRow, import_experts
from nightshift.platform.db import transaction
from nightshift.platform.models import Assignment, Batch, Expert, GoldAnswer, Item, ItemResult, Review, Submission
from nightshift.projects.registry import apply_spec
from nightshift.projects.spec import ProjectSpec, parse_spec
from nightshift.review import gold
from nightshift.review.aggregate import Vote, aggregate
from nightshift.review.decisions import claim_adjudication, claim_review, decide_review
from nightshift.review.gold import GoldScore
from nightshift.review.quality import PeerObservation, Quality
from nightshift.review.reliability import _share_of, gather_evidence
from nightshift.review.settle import ReviewReport, aggregate_ready_items, settle_batch
from nightshift.work.answers import submit_answer
from nightshift.work.submissions import NewSubmission, record_submissions, start_assignments
from tests.conftest import SAMPLES
from tests.flows.test_review_flow import _answer_open_work
from tests.nightshift.ingest.test_ingest import good_row, ingest_file

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
VERDICTS = ["sound", "misread_context", "flawed_reasoning", "unsafe"]


def _spec(sample_spec: ProjectSpec, overlap: dict[str, int]) -> ProjectSpec:
    data = sample_spec.model_dump(mode="json")
    project = data["project"]
    project["labels"] = [
        {"name": "verdict", "type": "single_choice", "options": VERDICTS, "aggregation": "majority_vote"},
        {"name": "rating", "type": "ordinal_scale", "min": 1, "max": 7},
    ]
    project["overlap"] = overlap
    project["gold_rate"] = 0
    project["review"] = False
    return parse_spec(data)


def _answer(verdict: str | None = None, rating: int | None = None) -> dict[str, Any]:
    return {k: v for k, v in {"verdict": verdict, "rating": rating}.items() if v is not None}


def _items(sessions, tmp_path, n: int = 1, **row: Any) -> int:
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(good_row(f"item-{i}", **row)) + "\n" for i in range(n)))
    return ingest_file(sessions, path)[0]


def _round(sessions, batch_id: int, answers: dict[int, list[dict[str, Any]]]) -> dict[int, str]:
    """Dispatch; the open annotations of each item are answered in assignment order with the
    answers given for it; accepted; aggregated. Returns each item's status."""
    with transaction(sessions) as session:
        dispatch_batch(session, batch_id, NOW)
        open_work = session.execute(
            select(Assignment.id, Assignment.item_id)
            .where(Assignment.status == "assigned", Assignment.role == "annotate")
            .order_by(Assignment.id)
        ).all()
        by_item: dict[int, list[int]] = {}
        for assignment_id, item_id in open_work:
            by_item.setdefault(item_id, []).append(assignment_id)
        ids = sorted(by_item)
        submissions = []
        for n, item_id in enumerate(ids):
            given = answers.get(n, [])
            assert len(given) == len(by_item[item_id]), (n, len(by_item[item_id]))
            submissions += [NewSubmission(a, x) for a, x in zip(by_item[item_id], given, strict=True)]
        start_assignments(session, {s.assignment_id: NOW - dt.timedelta(minutes=10) for s in submissions})
        record_submissions(session, submissions, NOW)
        session.execute(update(Assignment).where(Assignment.status == "submitted").values(status="accepted"))
        aggregate_ready_items(session, batch_id, ReviewReport(), check_agreement)
    return _statuses(sessions)


def _statuses(sessions) -> dict[int, str]:
    with sessions() as session:
        return dict(session.execute(select(Item.id, Item.status).order_by(Item.id)).all())


def test_a_random_answerer_is_paused_within_fifteen_answers_and_one_miss_pauses_no_good_expert() -> None:
    # A random answerer on four options is right about one time in four.
    random = Quality()
    for n in range(15):
        random = random.plus(1.0 if n % 4 == 0 else 0.0)
    assert random.should_pause(0.7)
    # A good expert who got one of three gold answers wrong is not judged on that alone,
    good = Quality().plus(1.0).plus(0.0).plus(1.0)
    assert not good.should_pause(0.7)
    # nor one right nine times in ten over a long record.
    steady = Quality()
    for n in range(200):
        steady = steady.plus(0.0 if n % 10 == 0 else 1.0)
    assert not steady.should_pause(0.7) and steady.mean > 0.85


def test_disagreements_on_items_not_settled_yet_count_at_once() -> None:
    # Ten answers, each beside one reliable expert's vote on an item still open (four options).
    agree = PeerObservation(_share_of("A", [("A", 0.9)], 4), 1 / 3)
    disagree = PeerObservation(_share_of("B", [("A", 0.9)], 4), 1 / 3)
    assert agree.right > 0.85 and disagree.right < 0.05
    random = Quality().with_peers([agree] * 2 + [disagree] * 8)
    assert random.should_pause(0.7) and random.mean < 0.5
    good = Quality().with_peers([agree] * 8 + [disagree] * 2)
    assert not good.should_pause(0.7) and good.mean > 0.75
    # Nothing open: the posterior is the one from settled evidence alone.
    assert Quality(3.0, 4.0).with_peers([]) == Quality(3.0, 4.0)
    # A sure observation is an ordinary right answer.
    sure = Quality(3.0, 4.0).with_peers([PeerObservation(1.0, 1 / 3)])
    assert abs(sure.mean - Quality(3.0, 4.0).plus(1.0).mean) < 0.01


def test_an_open_split_is_evidence_for_both_experts_before_a_third_vote(sessions, project, tmp_path) -> None:
    with transaction(sessions) as session:
        apply_spec(session, _spec(project, {"min": 2, "max": 5}))
    batch_id = _items(sessions, tmp_path, 1)
    statuses = _round(sessions, batch_id, {0: [_answer("unsafe", 2), _answer("sound", 2)]})
    assert list(statuses.values()) == ["rework"]
    with sessions() as session:
        voters = session.scalars(select(Assignment.expert_id).order_by(Assignment.id)).all()
        evidence = gather_evidence(session, voters)
    for expert_id in voters:
        record = evidence[expert_id]
        assert record.agreement_seen == 0 and len(record.peers) == 1
        # Either could be the one who is wrong: both move down from the prior, neither far.
        assert record.peers[0].right < 0.2
        assert 0.5 < record.estimate() < Quality().mean


def test_the_gold_gate_pauses_on_the_posterior_not_on_a_rate(sample_spec) -> None:
    project = sample_spec.project
    careless = GoldScore(1, seen=1, correct=0, credit=0.2, agreement_seen=14, agreed=3)
    unlucky = GoldScore(2, seen=3, correct=2, credit=2.0, agreement_seen=0, agreed=0)
    good = GoldScore(3, seen=1, correct=1, credit=1.0, agreement_seen=14, agreed=12)
    outcome = check_gold([careless, unlucky, good], project)
    assert sorted(outcome.evaluated_ids) == [1, 2, 3]
    assert set(outcome.failures) == {1}


def test_partial_credit_against_gold_scales_by_distance_and_tags_by_overlap(sample_spec) -> None:
    credit = gold.gold_credit(sample_spec.project)
    reference = {"rating": 5, "error_tags": ["factual_error", "reasoning_flaw"]}
    assert credit({"rating": 5, "error_tags": ["factual_error", "reasoning_flaw"]}, reference) == 1.0
    near = credit({"rating": 4, "error_tags": ["factual_error"]}, reference)
    far = credit({"rating": 1, "error_tags": ["unsafe"]}, reference)
    assert 0.5 < near < 1.0 and far < 0.2


def test_a_one_one_split_never_settles_and_a_clear_two_to_one_does() -> None:
    project = _spec_body()

    def votes(*answers: dict[str, Any], quality: float = 0.8) -> list[Vote]:
        return [Vote(n, n, quality, a) for n, a in enumerate(answers, 1)]

    assert aggregate(votes(_answer("sound"), _answer("unsafe")), project).unsettled == ("verdict",)
    # Within one step of the same middle is no agreement: 3 and 5 are apart.
    assert aggregate(votes(_answer(rating=3), _answer(rating=5)), project).unsettled == ("rating",)
    assert aggregate(votes(_answer(rating=4), _answer(rating=5)), project).unsettled == ()
    two_to_one = votes(_answer("sound"), _answer("sound"), _answer("unsafe"))
    assert aggregate(two_to_one, project).unsettled == ()
    # The same 2-1 from experts known to be poor is not enough: one more expert is asked for.
    assert aggregate(votes(*[v.answer for v in two_to_one], quality=0.4), project).unsettled == ("verdict",)


def _spec_body():
    from nightshift.projects.spec import load_spec
    from tests.conftest import SAMPLES

    return _spec(load_spec(SAMPLES / "spec.yaml"), {"min": 2, "max": 3}).project


def test_a_split_gets_one_more_expert_and_passes_on_a_clear_majority(sessions, project, tmp_path) -> None:
    with transaction(sessions) as session:
        apply_spec(session, _spec(project, {"min": 2, "max": 3}))
    batch_id = _items(sessions, tmp_path)
    assert list(_round(sessions, batch_id, {0: [_answer("sound", 5), _answer("unsafe", 5)]}).values()) == ["rework"]
    assert list(_round(sessions, batch_id, {0: [_answer("sound", 6)]}).values()) == ["passed"]


def test_a_clear_two_to_one_on_a_low_alpha_field_passes_when_its_experts_are_reliable(
    sessions, project, tmp_path
) -> None:
    with transaction(sessions) as session:
        apply_spec(session, _spec(project, {"min": 3, "max": 5}))
        session.execute(update(Expert).values(reliability=0.95))
    batch_id = _items(sessions, tmp_path, 6)
    spread = [_answer("sound", 1), _answer("misread_context", 4), _answer("unsafe", 7)]
    answers = dict.fromkeys(range(5), spread) | {5: [_answer("sound", 3), _answer("sound", 3), _answer("unsafe", 3)]}
    statuses = list(_round(sessions, batch_id, answers).values())
    # The verdict's alpha over the batch is far under 0.667 (five items split three ways): the 2-1
    # item still passes on its own votes; the split ones get one more expert, none an adjudicator.
    assert statuses == ["rework"] * 5 + ["passed"]


def _adjudicators(sessions) -> list[int]:
    with sessions() as session:
        return list(session.scalars(select(Expert.id).where(Expert.tier == "adjudicator").order_by(Expert.id)))


def _adjudicate(sessions, verdict: str) -> int:
    """The first adjudicator who can claim the waiting item answers it; returns their id."""
    with transaction(sessions) as session:
        for expert_id in _adjudicators(sessions):
            assignment_id = claim_adjudication(session, expert_id, NOW)
            if assignment_id is not None:
                start_assignments(session, {assignment_id: NOW - dt.timedelta(minutes=20)})
                submit_answer(session, expert_id, assignment_id, _answer(verdict, 4), NOW)
                return expert_id
    raise AssertionError("no adjudicator could claim the item")


def _review(sessions, batch_id: int) -> str:
    with transaction(sessions) as session:
        aggregate_ready_items(session, batch_id, ReviewReport(), check_agreement)
        return settle_batch(session, batch_id)


def test_an_item_still_disputed_after_adjudication_goes_to_a_second_and_its_batch_passes(
    sessions, project, tmp_path
) -> None:
    with transaction(sessions) as session:
        apply_spec(session, _spec(project, {"min": 2, "max": 2}))
        # Adjudicators with a good record: their votes weigh by it, as anyone's.
        session.execute(update(Expert).where(Expert.tier == "adjudicator").values(reliability=0.9))
    batch_id = _items(sessions, tmp_path)
    assert list(_round(sessions, batch_id, {0: [_answer("sound", 4), _answer("unsafe", 4)]}).values()) == [
        "adjudication"
    ]
    first = _adjudicate(sessions, "misread_context")  # a third opinion: still no majority
    assert _review(sessions, batch_id) == "in_review"
    assert list(_statuses(sessions).values()) == ["adjudication"]
    second = _adjudicate(sessions, "sound")
    assert second != first
    assert _review(sessions, batch_id) == "passed"
    with sessions() as session:
        rulings = session.scalar(select(func.count()).select_from(Assignment).where(Assignment.role == "adjudicate"))
    assert rulings == 2


def test_an_item_waiting_for_an_adjudicator_passes_on_its_votes_once_none_could_take_it(
    sessions, project, tmp_path
) -> None:
    with transaction(sessions) as session:
        apply_spec(session, _spec(project, {"min": 2, "max": 2}))
    batch_id = _items(sessions, tmp_path)
    assert list(_round(sessions, batch_id, {0: [_answer("sound", 4), _answer("unsafe", 4)]}).values()) == [
        "adjudication"
    ]
    assert _review(sessions, batch_id) == "in_review"  # someone could still take it: it waits
    with transaction(sessions) as session:
        # Every adjudicator paused (the quality gate, or ops) while it waited, before any claimed it.
        session.execute(update(Expert).where(Expert.tier == "adjudicator").values(status="paused"))
    assert _review(sessions, batch_id) == "passed"
    with sessions() as session:
        [result] = session.scalars(select(ItemResult)).all()
    assert result.method["_adjudicated"]["rounds"] == 0
    assert (
        result.method["_note"]
        == "still unsettled after 0 adjudications (no adjudicator left to take it): passed on its votes"
    )


def test_an_item_reopened_after_an_accepted_adjudication_can_be_adjudicated_again(sessions, project, tmp_path) -> None:
    with transaction(sessions) as session:
        apply_spec(session, _spec(project, {"min": 2, "max": 2}))
    batch_id = _items(sessions, tmp_path)
    _round(sessions, batch_id, {0: [_answer("sound", 4), _answer("unsafe", 4)]})
    _adjudicate(sessions, "sound")
    assert _review(sessions, batch_id) == "passed"
    with transaction(sessions) as session:
        # As a pause leaves it: back to adjudication, the accepted ruling still on record.
        session.execute(update(Item).values(status="adjudication"))
        session.execute(update(Batch).values(status="in_review"))
    _adjudicate(sessions, "sound")
    assert _review(sessions, batch_id) == "passed"


def test_an_unassignable_item_is_staffed_once_an_expert_with_the_skill_joins_and_holds_its_batch(
    sessions, project, tmp_path
) -> None:
    spec = _spec(project, {"min": 3, "max": 5}).model_dump(mode="json")
    spec["project"]["skill_field"] = "domain"
    with transaction(sessions) as session:
        apply_spec(session, parse_spec(spec))
    batch_id = _items(sessions, tmp_path, 1, domain="astrophysics")
    with transaction(sessions) as session:
        report = dispatch_batch(session, batch_id, NOW)
        assert report.assignments == 0 and report.unassignable
        assert settle_batch(session, batch_id) == "in_review"
    newcomers = [
        ExpertRow.model_validate(
            {
                "handle": f"astro-{n}",
                "name": f"Astro {n}",
                "email": f"astro{n}@experts.example",
                "timezone": "Europe/Berlin",
                "work_start_hour": 20,
                "work_hours": 3,
                "hourly_rate": "150.00",
                "tier": "annotator",
                "capacity": 10,
                "skills": ["finance", "astrophysics"],
                "languages": ["en"],
            }
        )
        for n in range(3)
    ]
    with transaction(sessions) as session:
        import_experts(session, newcomers)
        assert dispatch_batch(session, batch_id, NOW).assignments == 3
    assert list(_statuses(sessions).values()) == ["assigned"]


def test_a_pause_reopens_only_the_items_the_experts_votes_decided(sessions, project, tmp_path) -> None:
    with transaction(sessions) as session:
        apply_spec(session, _spec(project, {"min": 3, "max": 5}))
    batch_id = _items(sessions, tmp_path, 2)
    # Item 0: the first expert's vote is outvoted; item 1: it makes the majority.
    statuses = _round(
        sessions,
        batch_id,
        {
            0: [_answer("unsafe", 1), _answer("sound", 5), _answer("sound", 5)],
            1: [_answer("unsafe", 2), _answer("unsafe", 2), _answer("sound", 6)],
        },
    )
    assert list(statuses.values()) == ["passed", "passed"]
    with sessions() as session:
        first_voters = [
            session.scalar(
                select(Assignment.expert_id).where(Assignment.item_id == item_id).order_by(Assignment.id).limit(1)
            )
            for item_id in statuses
        ]
    with transaction(sessions) as session:
        # Only the expert who voted first on item 1 is paused; if the same expert voted first on
        # both, their vote on item 0 still changed nothing.
        reopened = gold.pause_and_requeue(session, batch_id, [first_voters[1]], "careless", "test")
    assert reopened == 1
    assert list(_statuses(sessions).values()) == ["passed", "rework"]
    with sessions() as session:
        # Item 0 is untouched: every vote on it stands (the paused expert's too, if they voted there).
        kept = session.scalars(select(Assignment.status).where(Assignment.item_id == next(iter(statuses)))).all()
    assert len(kept) == 3 and set(kept) == {"accepted"}


def test_a_reviewer_is_checked_against_final_answers_and_one_who_approves_everything_shows(sessions, project) -> None:
    batch_id, _ = ingest_file(sessions, SAMPLES / "items.jsonl")
    with transaction(sessions) as session:
        dispatch_batch(session, batch_id, NOW)
        careless = session.scalar(select(Assignment.expert_id).order_by(Assignment.id).limit(1))
        reviewer = session.scalar(select(Expert.id).where(Expert.tier == "reviewer").order_by(Expert.id).limit(1))

    def rating(expert_id: int, item_id: int, gold: dict | None) -> int | tuple[int, list[str]]:
        truth = gold["rating"] if gold else 5
        if expert_id != careless:
            return truth
        return (7 if truth <= 4 else 1), ["unsafe"]

    _answer_open_work(sessions, batch_id, rating)
    approved: list[int] = []
    with transaction(sessions) as session:
        # The reviewer approves whatever they are given, the careless expert's work included.
        while len(approved) < 60 and (task := claim_review(session, reviewer, NOW)) is not None:
            decide_review(session, reviewer, task, "approve", now=NOW)
            approved.append(task)
    with transaction(sessions) as session:
        session.execute(update(Assignment).where(Assignment.status == "submitted").values(status="accepted"))
        aggregate_ready_items(session, batch_id, ReviewReport(), check_agreement)
    with sessions() as session:
        subject = aliased(Assignment)
        judged = (
            session.execute(
                select(subject.expert_id)
                .select_from(Review)
                .join(Submission, Submission.id == Review.submission_id)
                .join(subject, subject.id == Submission.assignment_id)
                .where(
                    Review.reviewer_assignment_id.in_(approved),
                    select(ItemResult.item_id).where(ItemResult.item_id == subject.item_id).exists()
                    | select(GoldAnswer.item_id).where(GoldAnswer.item_id == subject.item_id).exists(),
                )
            )
            .scalars()
            .all()
        )
        record = gather_evidence(session, [reviewer])[reviewer]
    wrong = sum(1 for author in judged if author == careless)
    assert wrong and len(judged) > wrong
    # Each approval of the careless expert's answer was a wrong verdict; the rest were right.
    assert (record.reviews_seen, record.reviews_right) == (len(judged), len(judged) - wrong)


def test_review_is_spent_on_new_and_weaker_experts_and_a_sample_of_the_rest(sessions, project) -> None:
    data = project.model_dump(mode="json")
    data["project"]["review_share"] = 0.0
    with transaction(sessions) as session:
        apply_spec(session, parse_spec(data))
    batch_id, _ = ingest_file(sessions, SAMPLES / "items.jsonl")
    _answer_open_work(sessions, batch_id, lambda expert, item, gold: gold["rating"] if gold else 5)
    with transaction(sessions) as session:
        reviewer = session.scalar(select(Expert.id).where(Expert.tier == "reviewer").order_by(Expert.id).limit(1))
        authors = session.scalars(select(Assignment.expert_id).distinct().order_by(Assignment.expert_id)).all()
        newcomer, weak = authors[:2]
        # Everyone proven but a newcomer (at the prior) and one fallen under it.
        session.execute(update(Expert).values(reliability=0.9))
        session.execute(update(Expert).where(Expert.id == newcomer).values(reliability=0.8))
        session.execute(update(Expert).where(Expert.id == weak).values(reliability=0.6))
        held = set(session.scalars(select(Assignment.item_id).where(Assignment.expert_id == reviewer)))
        expected = dict(
            session.execute(
                select(Assignment.id, Assignment.item_id).where(
                    Assignment.expert_id.in_([newcomer, weak]),
                    Assignment.status == "submitted",
                    Assignment.item_id.not_in(held),
                )
            ).all()
        )
        reviewed: set[int] = set()
        while (task := claim_review(session, reviewer, NOW)) is not None:
            subject = session.scalar(
                select(Submission.assignment_id)
                .join(Assignment, Assignment.subject_submission_id == Submission.id)
                .where(Assignment.id == task)
            )
            reviewed.add(subject)
            decide_review(session, reviewer, task, "approve", now=NOW)
    # The proven experts' work (the sample is 0 here) is never claimed; the newcomer's and the weak
    # expert's is, each item once (one reviewer reviews an item once: where dispatch gave both of
    # them the same item, which depends on the hour, another reviewer takes the second).
    assert expected and reviewed <= set(expected)
    assert {expected[a] for a in reviewed} == set(expected.values())
