"""The review policy: the gate never judges an annotation while its review is open, waits (for a
while) for the reviews a policy asks for, and rework stops after the project's rounds."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select, update

from expectations.agreement import check_agreement
from expectations.submissions import check_submissions
from nightshift.dispatch.assignments import dispatch_batch
from nightshift.platform.db import transaction
from nightshift.platform.models import Assignment, Batch, Expert, Item, Submission
from nightshift.projects.registry import apply_spec, project_spec
from nightshift.projects.spec import ProjectSpec, parse_spec
from nightshift.review import gates, settle
from nightshift.review.decisions import claim_review, decide_review
from nightshift.work.access import ConflictError
from nightshift.work.submissions import NewSubmission, record_submissions, start_assignments
from tests.conftest import SAMPLES
from tests.flows.test_review_flow import _answer_open_work
from tests.nightshift.ingest.test_ingest import ingest_file
from tests.nightshift.review.test_quality import _adjudicate, _answer, _items, _spec

NOW = dt.datetime.now(dt.UTC)


def _apply(sessions, spec: ProjectSpec, **project: Any) -> None:
    data = spec.model_dump(mode="json")
    data["project"].update(project)
    with transaction(sessions) as session:
        apply_spec(session, parse_spec(data))


def _gate_round(sessions, batch_id: int, now: dt.datetime = NOW) -> tuple[set[int], str]:
    """One round as the review task runs it: the submissions gate over what it may judge, its
    verdicts, aggregation, the batch moved on. Returns the annotations it judged and the batch's status."""
    with sessions() as session:
        spec = project_spec(session, session.get_one(Batch, batch_id).project_id).project
        rows = gates.submissions_to_gate(session, batch_id, now=now)
    outcome = check_submissions(rows, spec)
    with transaction(sessions) as session:
        gates.apply_submission_gate(session, outcome, rows)
        settle.aggregate_ready_items(session, batch_id, settle.ReviewReport(), check_agreement)
        status = settle.settle_batch(session, batch_id)
    return {row["assignment_id"] for row in rows}, status


def _reviewers(sessions) -> list[int]:
    with sessions() as session:
        return list(session.scalars(select(Expert.id).where(Expert.tier == "reviewer").order_by(Expert.id)))


def _annotation_under(sessions, review_id: int) -> tuple[int, int]:
    """The annotation a review judges: its assignment and item."""
    with sessions() as session:
        return session.execute(
            select(Submission.assignment_id, Assignment.item_id)
            .join(Assignment, Assignment.id == Submission.assignment_id)
            .where(Submission.id == session.get_one(Assignment, review_id).subject_submission_id)
        ).one()


def _answered_and_under_review(sessions) -> tuple[int, int, int]:
    """The sample batch answered, and one annotation claimed by a reviewer: (batch, reviewer, review)."""
    batch_id, _ = ingest_file(sessions, SAMPLES / "items.jsonl")
    _answer_open_work(sessions, batch_id, lambda expert, item, gold: gold["rating"] if gold else 5)
    reviewer = _reviewers(sessions)[0]
    with transaction(sessions) as session:
        review = claim_review(session, reviewer, NOW)
    assert review is not None
    return batch_id, reviewer, review


def test_the_gate_leaves_an_annotation_under_review_and_judges_it_once_decided(sessions, project) -> None:
    batch_id, reviewer, review = _answered_and_under_review(sessions)
    annotation, item_id = _annotation_under(sessions, review)
    with sessions() as session:
        assert gates.held_for_review(session, batch_id) == 1

    judged, status = _gate_round(sessions, batch_id)
    # Everything else was judged; the reviewed annotation waits, and its item and batch with it.
    assert annotation not in judged and judged
    assert status == "in_review"
    with sessions() as session:
        assert session.get_one(Assignment, annotation).status == "submitted"
        assert session.get_one(Item, item_id).status == "assigned"

    # The reviewer's decision still lands (before this, the gate had accepted it: a 409).
    with transaction(sessions) as session:
        decide_review(session, reviewer, review, "approve", now=NOW)
    judged, status = _gate_round(sessions, batch_id)
    assert judged == {annotation}
    assert status == "passed"
    with sessions() as session:
        assert session.get_one(Assignment, annotation).status == "accepted"
        assert gates.held_for_review(session, batch_id) == 0


def test_a_decision_after_the_gate_judged_the_annotation_is_still_a_conflict(sessions, project) -> None:
    _, reviewer, review = _answered_and_under_review(sessions)
    annotation, _ = _annotation_under(sessions, review)
    with transaction(sessions) as session:
        # Judged some other way meanwhile (an expert paused on gold, say): the decision changes nothing.
        session.execute(update(Assignment).where(Assignment.id == annotation).values(status="rejected"))
    with pytest.raises(ConflictError), transaction(sessions) as session:
        decide_review(session, reviewer, review, "approve", now=NOW)


def test_a_policy_that_waits_holds_the_annotations_it_picks_until_reviewed_or_the_wait_ends(sessions, project) -> None:
    # Proven experts' work is never sampled (share 0): only a newcomer's is picked for review.
    _apply(sessions, project, review_share=0.0, review_wait_hours=2)
    batch_id, _ = ingest_file(sessions, SAMPLES / "items.jsonl")
    _answer_open_work(sessions, batch_id, lambda expert, item, gold: gold["rating"] if gold else 5)
    with transaction(sessions) as session:
        authors = session.scalars(
            select(Assignment.expert_id).where(Assignment.role == "annotate").distinct().order_by(Assignment.expert_id)
        ).all()
        newcomer = authors[0]
        session.execute(update(Expert).values(reliability=0.9))
        session.execute(update(Expert).where(Expert.id == newcomer).values(reliability=0.8))
        theirs = set(
            session.scalars(
                select(Assignment.id).where(Assignment.expert_id == newcomer, Assignment.role == "annotate")
            )
        )
    assert theirs
    with sessions() as session:
        assert gates.held_for_review(session, batch_id, NOW) == len(theirs)
        # Past the wait, the gate goes on without a review.
        assert gates.held_for_review(session, batch_id, NOW + dt.timedelta(hours=3)) == 0

    judged, status = _gate_round(sessions, batch_id)
    assert judged and not judged & theirs
    assert status == "in_review"

    with transaction(sessions) as session:
        # With nobody able to review, waiting would only hold the batch: the gate judges them now.
        session.execute(update(Expert).where(Expert.tier != "annotator").values(status="paused"))
    with sessions() as session:
        assert gates.held_for_review(session, batch_id, NOW) == 0
    judged, _ = _gate_round(sessions, batch_id)
    assert judged == theirs


def _answer_item(sessions, batch_id: int, seconds: float) -> int:
    """Dispatch the one-item batch and answer its open annotation, `seconds` after opening it;
    returns the annotation's assignment."""
    with transaction(sessions) as session:
        dispatch_batch(session, batch_id, NOW)
        assignment_id = session.scalars(
            select(Assignment.id).where(Assignment.status == "assigned", Assignment.role == "annotate")
        ).one()
        start_assignments(session, {assignment_id: NOW - dt.timedelta(seconds=seconds)})
        record_submissions(session, [NewSubmission(assignment_id, _answer("sound", 4))], NOW)
    return assignment_id


def _status(sessions, batch_id: int) -> tuple[str, str | None]:
    with sessions() as session:
        return session.execute(select(Item.status, Item.status_reason).where(Item.batch_id == batch_id)).one()


def test_rework_stops_after_the_projects_rounds_and_an_adjudicator_decides(sessions, project, tmp_path) -> None:
    _apply(sessions, _spec(project, {"min": 1, "max": 1}), rework_rounds=2)
    batch_id = _items(sessions, tmp_path)
    # Answered in a second: the submissions gate rejects it (time on task), and the item goes back.
    _answer_item(sessions, batch_id, 1)
    _gate_round(sessions, batch_id)
    assert _status(sessions, batch_id)[0] == "rework"
    _answer_item(sessions, batch_id, 1)
    _gate_round(sessions, batch_id)
    status, reason = _status(sessions, batch_id)
    assert status == "adjudication"
    assert reason and "rejected 2 times" in reason
    # The adjudicator's answer alone settles it: nothing is left stranded.
    _adjudicate(sessions, "sound")
    assert _gate_round(sessions, batch_id)[1] == "passed"


def test_a_reviewers_rejections_count_as_rework_rounds(sessions, project, tmp_path) -> None:
    spec = _spec(project, {"min": 1, "max": 1})
    _apply(sessions, spec, rework_rounds=2, review=True, review_share=1.0)
    batch_id = _items(sessions, tmp_path)
    reviewers = iter(_reviewers(sessions))
    for round_ in (1, 2):
        _answer_item(sessions, batch_id, 600)
        with transaction(sessions) as session:
            # A reviewer who has not reviewed this item yet (nobody reviews an item twice).
            for reviewer in reviewers:
                review = claim_review(session, reviewer, NOW)
                if review is not None:
                    break
            assert review is not None
            decide_review(session, reviewer, review, "reject", reason=f"round {round_}: misreads the scenario")
        assert _status(sessions, batch_id)[0] == ("rework" if round_ == 1 else "adjudication")
