"""The review flow on a real Prefect API: a careless expert is caught by gold, paused and their
work re-queued; a batch whose experts disagree fails its agreement gate and goes to adjudication,
whose decision is final. Every gate run is stored with the failing rows by id and its Data Docs."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from urllib.parse import urlparse

import pytest
from sqlalchemy import func, select, text

from flows.review import ReviewParams, review_flow
from nightshift.dispatch.assignments import dispatch_batch
from nightshift.platform.db import transaction
from nightshift.platform.models import Assignment, AuditLog, Expert, GateRun, GoldAnswer, Item, ItemResult
from nightshift.projects.registry import apply_spec
from nightshift.projects.spec import ProjectSpec, parse_spec
from nightshift.review.gates import review_parts
from nightshift.simulation.simulate import simulate_adjudications
from nightshift.work.submissions import NewSubmission, record_submissions, start_assignments
from tests.conftest import SAMPLES
from tests.nightshift.ingest.test_ingest import ingest_file

NOW = dt.datetime.now(dt.UTC)
PAUSED = "accuracy very probably under 95% (gold and agreement)"


def _apply(sessions, sample_spec: ProjectSpec, **changes) -> None:
    data = sample_spec.model_dump(mode="json")
    for path, value in changes.items():
        section, key = path.split("__")
        data["project"][section][key] = value
    with transaction(sessions) as session:
        apply_spec(session, parse_spec(data))


def _answer(assignment_id: int, rating: int, gold: dict | None) -> dict:
    # Each expert's own words: the pasted-text check must not fire on honest work.
    return {
        "rating": rating,
        "error_tags": gold["error_tags"] if gold else [],
        "rationale": f"Assignment {assignment_id}: the answer misreads the covenant terms in the scenario.",
        "improved_prompt": f"Assignment {assignment_id}: state the covenant terms and ask for the effect on "
        "liquidity over the next four quarters.",
    }


def _answer_open_work(sessions, batch_id: int, rating_of) -> dict[int, list[int]]:
    """Dispatch and answer every open annotation; rating_of(assignment, expert, item, gold answer)
    gives each rating. Returns each expert's assignments."""
    with transaction(sessions) as session:
        dispatch_batch(session, batch_id, NOW)
        rows = session.execute(
            select(Assignment.id, Assignment.expert_id, Assignment.item_id, GoldAnswer.answer)
            .outerjoin(GoldAnswer, GoldAnswer.item_id == Assignment.item_id)
            .where(Assignment.status == "assigned", Assignment.role == "annotate")
        )
        held: dict[int, list[int]] = {}
        submissions = []
        for assignment_id, expert_id, item_id, gold in rows:
            held.setdefault(expert_id, []).append(assignment_id)
            given = rating_of(expert_id, item_id, gold)
            # A rating, or (rating, error tags) for an expert who gets the tags wrong as well.
            rating, tags = given if isinstance(given, tuple) else (given, None)
            answer = _answer(assignment_id, rating, gold)
            if tags is not None:
                answer["error_tags"] = tags
            submissions.append(NewSubmission(assignment_id, answer))
        start_assignments(session, {s.assignment_id: NOW - dt.timedelta(minutes=20) for s in submissions})
        record_submissions(session, submissions, NOW)
    return held


def _docs_page(url: str | None) -> Path:
    assert url and url.startswith("file://")
    return Path(urlparse(url).path)


@pytest.fixture
def batch(sessions, project, app_env, prefect_api) -> int:
    return ingest_file(sessions, SAMPLES / "items.jsonl")[0]


def _one_careless_expert(sessions, batch: int) -> tuple[int, dict[int, list[int]]]:
    """Answer the batch's work; the first expert given a gold item answers everything badly.
    Returns (that expert, each expert's assignments)."""
    with transaction(sessions) as session:
        # Dispatch first to know who holds gold; answering dispatches again, which adds nothing.
        dispatch_batch(session, batch, NOW)
        suspect = session.scalar(
            select(Assignment.expert_id)
            .join(GoldAnswer, GoldAnswer.item_id == Assignment.item_id)
            .order_by(Assignment.id)
            .limit(1)
        )
    assert suspect is not None

    def rating(expert_id: int, item_id: int, gold: dict | None) -> int | tuple[int, list[str]]:
        truth = gold["rating"] if gold else 5
        if expert_id != suspect:
            return truth
        # Wrong on every field: as far from the truth on the scale as it goes, tags none of the gold's.
        wrong_tags = sorted(
            {"unsafe", "instruction_violation", "context_misread"} - set((gold or {}).get("error_tags", []))
        )
        return (7 if truth <= 4 else 1), wrong_tags[:1]

    held = _answer_open_work(sessions, batch, rating)
    return suspect, held


def test_a_careless_expert_is_caught_by_gold_paused_and_their_work_requeued(sessions, sample_spec, batch) -> None:
    # A strict project (a floor of 95%): one gold answer wrong on every field is then a verdict,
    # one right answer is not (review.quality's posterior).
    _apply(sessions, sample_spec, gates__min_gold_answers=1, gates__min_gold_accuracy=0.95)
    suspect, _ = _one_careless_expert(sessions, batch)
    result = review_flow(ReviewParams(batch_id=batch))

    assert result.paused_experts == 1
    with sessions() as session:
        assert session.get_one(Expert, suspect).status == "paused"
        theirs = session.scalars(select(Assignment).where(Assignment.expert_id == suspect)).all()
        # Their votes were outvoted everywhere (gold items are scored, never delivered): nothing they
        # did decided an item, so every answer stands, and is paid.
        assert {a.status for a in theirs} == {"accepted"}
        assert result.requeued_items == 0
        [gold_run] = session.scalars(select(GateRun).where(GateRun.gate == "gold")).all()
        assert not gold_run.success and gold_run.failed == 1
        assert gold_run.results[0]["failing_ids"] == [suspect]
        assert _docs_page(gold_run.docs_url).is_file()
        # The pause is on the record: who, from what, by which gate run, and why.
        [entry] = session.scalars(select(AuditLog).where(AuditLog.entity == "expert")).all()
        assert (entry.entity_id, entry.from_status, entry.to_status) == (suspect, "active", "paused")
        assert entry.actor == f"gate:{gold_run.id}" and entry.detail == {"reason": PAUSED}
    # Their items go to other experts; they get nothing new.
    with transaction(sessions) as session:
        staffed = dispatch_batch(session, batch, NOW)
        assert staffed.items == 0
        again = session.scalars(
            select(Assignment).where(Assignment.expert_id == suspect, Assignment.status == "assigned")
        ).all()
        assert again == []


# Counts every write of an annotation row, with the database's own triggers.
_COUNT_WRITES = {
    "sqlite": [
        "CREATE TABLE annotation_writes (assignment_id BIGINT)",
        "CREATE TRIGGER count_writes AFTER UPDATE ON assignments"
        " BEGIN INSERT INTO annotation_writes VALUES (NEW.id); END",
    ],
    "postgresql": [
        "CREATE TABLE annotation_writes (assignment_id BIGINT)",
        "CREATE FUNCTION count_write() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN INSERT INTO annotation_writes VALUES (NEW.id); RETURN NEW; END $$",
        "CREATE TRIGGER count_writes AFTER UPDATE ON assignments FOR EACH ROW EXECUTE FUNCTION count_write()",
    ],
}


def test_the_gate_writes_each_annotation_once_and_a_pause_leaves_the_votes_it_did_not_need(
    sessions, sample_spec, batch
) -> None:
    _apply(sessions, sample_spec, gates__min_gold_answers=1, gates__min_gold_accuracy=0.95)
    _, held = _one_careless_expert(sessions, batch)
    with transaction(sessions) as session:
        for statement in _COUNT_WRITES[session.get_bind().dialect.name]:
            session.execute(text(statement))
    result = review_flow(ReviewParams(batch_id=batch))

    assert result.paused_experts == 1 and result.gated == sum(len(ids) for ids in held.values())
    with sessions() as session:
        writes = dict(
            session.execute(text("SELECT assignment_id, count(*) FROM annotation_writes GROUP BY assignment_id")).all()
        )
    assert set(writes) == {a for ids in held.values() for a in ids}
    assert set(writes.values()) == {1}


def test_a_batch_whose_experts_disagree_fails_its_agreement_gate_and_goes_to_adjudication(
    sessions, sample_spec, batch
) -> None:
    _apply(sessions, sample_spec, overlap__max=3)
    rng = random.Random(5)
    _answer_open_work(sessions, batch, lambda e, i, gold: gold["rating"] if gold else rng.randint(1, 7))
    first = review_flow(ReviewParams(batch_id=batch))

    with sessions() as session:
        [run] = session.scalars(select(GateRun).where(GateRun.gate == "agreement")).all()
        waiting = set(session.scalars(select(Item.id).where(Item.status == "adjudication")))
        passed = set(session.scalars(select(Item.id).where(Item.status == "passed", Item.is_gold.is_(False))))
        # The quality gate runs after aggregation: an expert it paused takes back what their votes decided.
        reopened = set(session.scalars(select(Item.id).where(Item.status == "rework", Item.is_gold.is_(False))))
        # An item no adjudicator can take (their languages, or they annotated it) passes on its
        # aggregate, saying so, rather than holding the batch forever.
        stranded = {
            r.item_id
            for r in session.scalars(select(ItemResult))
            if r.method.get("_note", "").endswith("no adjudicator available")
        }
    assert not run.success and run.thresholds["alpha"]["rating"] < 0.667
    fields = next(
        e
        for e in run.results
        if e["expectation"] == "expect_column_values_to_be_between" and e["failing_ids"] == ["rating"]
    )
    assert fields["reason"] == "Krippendorff's alpha under 0.667"
    # Items go to adjudication on their own votes (unsettled at the cap), not because the batch's
    # alpha is low: items with a clear majority pass although the field's alpha fails.
    assert first.adjudication_items == len(waiting) > 20 and first.batch_status == "in_review"
    assert passed
    # Only the unsettled items failed; every failing row is named.
    # Only the unsettled items failed, every failing row is named: those waiting for adjudication,
    # those passed for want of an adjudicator, and any a same-round pause reopened (which ones
    # depends on the experts dispatch picked, so on the hour the test runs).
    failing = {
        frozenset(e["failing_ids"])
        for e in run.results
        if e["expectation"] == "expect_column_values_to_be_in_set" and e["failing_ids"]
    }
    assert len(failing) == 1 and run.failed == len(unsettled := next(iter(failing)))
    assert waiting | stranded <= unsettled <= waiting | stranded | reopened
    assert run.evaluated == len(waiting) + len(passed) + len(reopened)
    assert len(reopened) <= first.requeued_items
    assert len(stranded) <= 5
    assert _docs_page(run.docs_url).is_file()

    # Adjudication in rounds: an item whose votes an adjudicator's answer does not settle waits
    # for another one; after the rounds' limit (or with no adjudicator left) it passes on its votes.
    # Experts whose random answers the gold and agreement evidence caught are paused meanwhile:
    # what their votes decided is staffed again, and answered consistently this time.
    decided, status = 0, first.batch_status
    for _ in range(6):
        decided += simulate_adjudications(sessions, batch, NOW)
        _answer_open_work(sessions, batch, lambda e, i, gold: gold["rating"] if gold else 4)
        status = review_flow(ReviewParams(batch_id=batch)).batch_status
        if status == "passed":
            break
    assert status == "passed" and decided >= len(waiting)
    with sessions() as session:
        results = session.scalars(select(ItemResult).where(ItemResult.item_id.in_(waiting))).all()
        adjudications = session.scalars(select(Assignment).where(Assignment.role == "adjudicate")).all()
        tiers = set(session.scalars(select(Expert.tier).where(Expert.id.in_([a.expert_id for a in adjudications]))))
    assert len(results) == len(waiting) and {a.status for a in adjudications} == {"accepted"}
    # Settled by their adjudications, or (an adjudicated item a later pause reopened) by new votes.
    assert sum(1 for r in results if r.method.get("_adjudicated", {}).get("rounds", 0) >= 1) > len(results) // 2
    assert tiers == {"adjudicator"}
    # Never by an expert who annotated the item.
    with sessions() as session:
        for a in adjudications:
            annotators = session.scalars(
                select(Assignment.expert_id).where(Assignment.item_id == a.item_id, Assignment.role == "annotate")
            ).all()
            assert a.expert_id not in annotators


def test_a_round_bigger_than_a_part_is_reviewed_in_parts_and_a_copy_between_parts_is_caught(
    sessions, batch, monkeypatch
) -> None:
    from tasks.runtime import reset_resources

    monkeypatch.setenv("NIGHTSHIFT_REVIEW_PART_SUBMISSIONS", "100")
    reset_resources()
    held = _answer_open_work(sessions, batch, lambda e, i, gold: gold["rating"] if gold else 5)
    # Two experts, one on the batch's first item and one on its last (parts apart, neither gold), write the
    # same rationale, in different case and spacing.
    copied = "The answer misreads the covenant terms: the ratio is {} quarterly, not annual."
    with transaction(sessions) as session:
        rows = session.execute(
            select(Assignment.id, Assignment.expert_id, Assignment.item_id)
            .join(Item, Item.id == Assignment.item_id)
            .where(Item.is_gold.is_(False))
            .order_by(Assignment.item_id)
        ).all()
        first = rows[0]
        last = next(r for r in reversed(rows) if r.expert_id != first.expert_id)
        for row, words in ((first, "tested"), (last, "TESTED ")):
            session.execute(
                text("UPDATE submissions SET answer = :answer WHERE assignment_id = :id"),
                {"answer": json.dumps(_answer(row.id, 5, None) | {"rationale": copied.format(words)}), "id": row.id},
            )
    result = review_flow(ReviewParams(batch_id=batch))

    submitted = sum(len(ids) for ids in held.values())
    with sessions() as session:
        runs = session.scalars(select(GateRun).where(GateRun.gate == "submissions")).all()
        rejected = dict(
            session.execute(
                select(Assignment.id, Assignment.status_reason).where(Assignment.status == "rejected")
            ).all()
        )
        statuses = session.scalars(select(Assignment.status).where(Assignment.role == "annotate")).all()
        passed = session.scalar(select(func.count()).select_from(Item).where(Item.status == "passed"))
        reworked = set(session.scalars(select(Item.id).where(Item.status == "rework")))
    # Each part gated on its own, every annotation exactly once.
    assert len(runs) >= submitted // 100 and sum(r.evaluated for r in runs) == submitted == result.gated
    assert set(statuses) == {"accepted", "rejected"}
    # The copy is caught across parts: both copies, nothing else.
    assert rejected == {
        first.id: "free text identical to another expert's",
        last.id: "free text identical to another expert's",
    }
    assert result.rejected == 2 and reworked == {first.item_id, last.item_id}
    # Every other item passed, in whichever part it was.
    assert result.passed_items == passed == 240 - 2 and result.batch_status == "in_review"


def test_a_round_is_cut_into_as_many_parts_as_its_size_needs_and_none_empty(sessions, batch) -> None:
    _answer_open_work(sessions, batch, lambda e, i, gold: 5)
    with sessions() as session:
        items = sorted(
            session.scalars(
                select(Assignment.item_id).where(Assignment.role == "annotate", Assignment.status == "submitted")
            )
        )
        total = len(items)
        for size in (total, total + 1, total - 1, total // 3, 100):
            parts = review_parts(session, batch, size)
            counts = [
                sum(1 for i in items if (after is None or i > after) and (up_to is None or i <= up_to))
                for after, up_to in parts
            ]
            # Every submission in exactly one part and no part empty: a round of exactly the size
            # is one part, not one and an empty one. Cuts fall between items, so a part may run
            # over the size by the rest of one item.
            assert sum(counts) == total and all(counts), (size, counts)
            assert len(parts) <= -(-total // size) and all(n < size + 10 for n in counts[:-1]), (size, counts)
        assert len(review_parts(session, batch, total)) == 1 and len(review_parts(session, batch, 100)) > 5
