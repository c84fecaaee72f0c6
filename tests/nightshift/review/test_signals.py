"""Cheating and low-effort signals, each with a case it must flag and one it must not: pastes from
the workbench's telemetry, rushing against what there was to read and write, echoes, exact copies,
near-duplicates (MinHash) and identical answer sequences; their risk, which counts against the
expert's quality and puts the submission in front of a reviewer."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import select, update

from expectations.submissions import check_submissions
from nightshift.platform.db import transaction
from nightshift.platform.models import Assignment, Batch, Expert, Item, Submission, SubmissionSignal
from nightshift.projects.registry import project_spec
from nightshift.projects.spec import load_spec
from nightshift.review import gates
from nightshift.review.near_duplicates import near_duplicates
from nightshift.review.policy import worth_reviewing
from nightshift.review.reliability import gather_evidence
from nightshift.review.round_signals import record_round_signals, round_signals, rushed
from nightshift.review.sequences import same_sequences
from nightshift.work import signals, telemetry
from nightshift.work.access import AnswerInvalid
from tests.conftest import SAMPLES
from tests.flows.test_review_flow import _answer_open_work
from tests.nightshift.ingest.test_ingest import ingest_file

SPEC = load_spec(SAMPLES / "spec.yaml").project
RATIONALE = (
    "The answer recommends the sale although the covenant in the context caps leverage at three times "
    "EBITDA, and the leaseback adds lease debt that breaches it within a year."
)


def _with_gates(**changes: object):
    return SPEC.model_copy(update={"gates": SPEC.gates.model_copy(update=changes)})


def _row(submission_id: int, expert_id: int, item_id: int = 1, **answer: object) -> dict:
    return {
        "submission_id": submission_id,
        "expert_id": expert_id,
        "item_id": item_id,
        "answer": answer,
        "time_on_task_seconds": 900,
        "item_length": 1200,
    }


def test_a_mostly_pasted_rationale_is_a_signal_and_a_typed_one_is_not() -> None:
    answer = {"rating": 3, "rationale": RATIONALE, "improved_prompt": "x" * 90}
    pasted = telemetry.parse(
        {
            "pastes": [{"field": "rationale", "chars": len(RATIONALE), "at": 12.5}],
            "typing": [{"field": "rating", "chars": 1, "at": 3}],
        }
    )
    found = telemetry.pasted_signal(7, pasted, answer, SPEC)
    assert found.score == 1.0 and found.evidence["fields"] == ["rationale"] and found.evidence["pastes"] == 1
    typed = telemetry.parse(
        {
            "pastes": [{"field": "rationale", "chars": 12, "at": 40}],
            "typing": [{"field": "rationale", "chars": len(RATIONALE) - 12, "at": float(s)} for s in range(30, 60)][:1],
        }
    )
    assert telemetry.pasted_signal(7, typed, answer, SPEC).score == 0.0
    for bad in ({"pastes": "no"}, {"other": []}, {"pastes": [{"field": "x", "chars": -1}]}, [1, 2]):
        with pytest.raises(AnswerInvalid, match="telemetry"):
            telemetry.parse(bad)


def test_too_little_time_for_what_was_read_and_written_is_rushed() -> None:
    rows = [_row(1, 1, rationale=RATIONALE), _row(2, 2, rationale=RATIONALE)]
    rows[0]["time_on_task_seconds"] = 40
    found = {s.submission_id: s for s in rushed(rows, SPEC)}
    assert set(found) == {1}
    assert found[1].evidence["needed"] > 40 and 0 < found[1].score < 1
    assert rushed(rows, _with_gates(reading_chars_per_second=None)) == []


def test_near_duplicates_of_an_earlier_text_are_found_across_experts_not_within_one_nor_when_off() -> None:
    spec = _with_gates(near_duplicate_similarity=0.6)
    edited = RATIONALE.replace("recommends", "suggests").replace("within a year", "inside twelve months")
    rng = random.Random(3)
    words = RATIONALE.split()
    unrelated = [" ".join(rng.sample(words, len(words))) for _ in range(5)]
    rows = [_row(1, 1, rationale=RATIONALE), _row(2, 2, rationale=edited), _row(3, 1, rationale=edited + " ok")]
    rows += [_row(10 + n, 10 + n, rationale=text) for n, text in enumerate(unrelated)]
    found = {s.submission_id: s for s in near_duplicates(rows, spec)}
    # The first text is the original: only the later, edited ones are flagged.
    assert set(found) == {2, 3}
    assert found[2].evidence["similar_to_submission"] == 1 and found[2].score >= 0.6
    assert found[3].evidence["similar_to_submission"] == 2  # not 1: the same expert wrote both
    # An exact copy is review.agreement's, not a near-duplicate; and unset, nothing is looked for.
    assert near_duplicates([_row(1, 1, rationale=RATIONALE), _row(2, 2, rationale=RATIONALE)], spec) == []
    assert near_duplicates(rows, SPEC) == []
    # A text judged in an earlier round is compared with, never flagged itself.
    later = [_row(50, 2, rationale=edited)]
    earlier = [_row(1, 1, rationale=RATIONALE)]
    assert [(s.submission_id, s.evidence["similar_to_submission"]) for s in near_duplicates(later, spec, earlier)] == [
        (50, 1)
    ]


def test_two_experts_with_the_same_answers_on_contested_items_are_a_sequence() -> None:
    rows = []
    for item in range(8):
        # Experts 1 and 2 answer alike everywhere; 3 disagrees on every other item.
        rows += [
            _row(100 + item, 1, item, rating=item % 7 + 1),
            _row(200 + item, 2, item, rating=item % 7 + 1),
            _row(300 + item, 3, item, rating=(item % 7 + 1) if item % 2 else 7 - item % 7),
        ]
    found = {s.submission_id: s for s in same_sequences(rows, SPEC)}
    contested = {item for item in range(8) if item % 2 == 0 and 7 - item % 7 != item % 7 + 1}
    assert set(found) == {100 + i for i in contested} | {200 + i for i in contested}
    assert found[100].evidence == {"shared_items": 8, "identical": 8, "contested_identical": len(contested)}
    # Independent experts who agree only where the item is easy: nothing.
    honest = [r for r in rows if r["expert_id"] != 2]
    assert same_sequences(honest, SPEC) == []


def test_risk_combines_signals() -> None:
    assert signals.combined_risk({}) == 0
    assert signals.combined_risk({"echo": 1.0}) == 1.0
    weak = signals.combined_risk({"rushed": 0.3})
    assert 0 < weak < signals.RISK_FLAG < signals.combined_risk({"rushed": 0.3, "pasted": 0.9})


def test_the_gates_signals_are_kept_count_against_the_expert_and_call_for_review(sessions, project) -> None:
    batch_id, _ = ingest_file(sessions, SAMPLES / "items.jsonl")
    _answer_open_work(sessions, batch_id, lambda expert, item, gold: gold["rating"] if gold else 5)
    with transaction(sessions) as session:
        submission_id, item_id, expert_id = session.execute(
            select(Submission.id, Assignment.item_id, Assignment.expert_id)
            .join(Assignment, Assignment.id == Submission.assignment_id)
            .where(Assignment.role == "annotate")
            .order_by(Submission.id)
            .limit(1)
        ).one()
        prompt = session.scalar(select(Item.payload["prompt"].as_string()).where(Item.id == item_id))
        answer = dict(session.get_one(Submission, submission_id).answer)
        answer["improved_prompt"] = f"Please answer: {prompt}"
        session.execute(update(Submission).where(Submission.id == submission_id).values(answer=answer))
        before = gather_evidence(session, [expert_id])[expert_id]
    with transaction(sessions) as session:
        spec = project_spec(session, session.get_one(Batch, batch_id).project_id).project
        rows = gates.submissions_to_gate(session, batch_id)
        gates.add_echoes(session, rows, spec)
        copied = gates.copies_among(rows, spec)
        outcome = check_submissions(rows, spec, None, copied)
        gates.apply_submission_gate(session, outcome, rows)
        record_round_signals(session, rows, spec, copied)
        # A second run over the same rows adds nothing.
        assert signals.record(session, round_signals(rows, spec, copied)) == 0
    with sessions() as session:
        found = signals.signals_of(session, submission_id)
        assert found["echo"][0] == 1.0 and found["risk"][0] == 1.0
        assert found["risk"][1] == {"signals": {"echo": 1.0}}
        others = session.scalar(
            select(SubmissionSignal.submission_id)
            .where(
                SubmissionSignal.kind == "risk",
                SubmissionSignal.submission_id != submission_id,
                SubmissionSignal.score >= signals.RISK_FLAG,
            )
            .limit(1)
        )
        assert others is None
        after = gather_evidence(session, [expert_id])[expert_id]
        assert (before.flagged, after.flagged) == (0, 1)
        assert after.quality().mean < before.quality().mean
    with transaction(sessions) as session:
        # Proven experts all, and a sample of none: only the risky expert's work is worth a review.
        session.execute(update(Expert).values(reliability=0.9))
        project_id = session.get_one(Batch, batch_id).project_id
        picked = set(
            session.scalars(
                select(Submission.id)
                .join(Assignment, Assignment.id == Submission.assignment_id)
                .join(Item, Item.id == Assignment.item_id)
                .join(Expert, Expert.id == Assignment.expert_id)
                .where(worth_reviewing(project_id, 0.0, Expert))
            )
        )
        theirs = set(
            session.scalars(
                select(Submission.id)
                .join(Assignment, Assignment.id == Submission.assignment_id)
                .where(Assignment.expert_id == expert_id)
            )
        )
        assert session.scalar(select(Expert.flagged_submissions).where(Expert.id == expert_id)) == 1
    # The flagged expert's work is all worth a review now; nobody else's.
    assert submission_id in picked and picked == theirs
