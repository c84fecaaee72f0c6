"""Qualification: an exam grants its skill at a level to those who pass, dispatch then sends a
project asking for that level only to them; failing cools down and counts against the retakes;
free text waits for a grade; training shows the answer and grants nothing; every scored answer
is quality evidence."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from nightshift.dispatch.assignments import dispatch_batch
from nightshift.experts.registry import import_experts, parse_experts
from nightshift.platform.db import transaction
from nightshift.platform.errors import SpecError
from nightshift.platform.models import Assignment, Expert, ExpertRoute, ExpertSkill, Item, utcnow
from nightshift.projects.registry import apply_spec
from nightshift.projects.spec import parse_spec
from nightshift.review.reliability import gather_evidence
from nightshift.work import exams
from nightshift.work.access import AnswerInvalid, ConflictError
from tests.conftest import SAMPLES
from tests.nightshift.ingest.test_ingest import good_row, ingest_file

EXAM = SAMPLES / "exams" / "finance-level-1.yaml"
TRAINING = SAMPLES / "exams" / "onboarding.yaml"


def _answers(path: Path) -> list[dict[str, object]]:
    return [item["answer"] for item in yaml.safe_load(path.read_text())["items"]]


def _take(session, expert_id: int, slug: str, answers: list[dict[str, object]], now=None) -> exams.Scored:
    attempt = exams.start_attempt(session, expert_id, slug, now)
    scored = None
    for answer in answers:
        view = exams.view_attempt(session, expert_id, attempt)
        assert view.item_id is not None
        scored = exams.answer_item(session, expert_id, attempt, view.item_id, answer, now)
    assert scored is not None
    return scored


def _expert(session, handle: str) -> int:
    return session.scalar(select(Expert.id).where(Expert.handle == handle))


def test_an_exam_item_whose_answer_breaks_its_fields_is_refused_with_its_place(tmp_path: Path) -> None:
    data = yaml.safe_load(EXAM.read_text())
    data["items"][2]["answer"] = {"verdict": "maybe"}
    with pytest.raises(SpecError, match=r"items.3.answer.verdict"):
        exams.parse_exam(data)
    data["items"][2]["answer"] = {"verdict": "sound", "other": 1}
    with pytest.raises(SpecError, match="not a field of this exam"):
        exams.parse_exam(data)
    (tmp_path / "bad.yaml").write_text("slug: [unclosed")
    with pytest.raises(SpecError, match="not valid YAML"):
        exams.load_exam(tmp_path / "bad.yaml")


def test_passing_grants_the_level_and_only_qualified_experts_get_the_projects_work(
    sessions, project, tmp_path: Path
) -> None:
    right = _answers(EXAM)
    wrong = [{"verdict": "sound"}] * len(right)
    data = project.model_dump(mode="json")
    data["project"].update(slug="qualified", skill_level=1)
    with transaction(sessions) as session:
        apply_spec(session, parse_spec(data))
        exams.add_exam(session, exams.load_exam(EXAM))
        passer, failer = _expert(session, "expert-00001"), _expert(session, "expert-00002")
        done = _take(session, passer, "finance-level-1", right)
        assert done.finished and done.status == "passed" and done.right_answer is None  # an exam tells no answers
        failed = _take(session, failer, "finance-level-1", wrong)
        assert failed.status == "failed"
    with sessions() as session:
        assert (
            session.scalar(
                select(ExpertSkill.level).where(ExpertSkill.expert_id == passer, ExpertSkill.skill == "finance")
            )
            == 1
        )
        assert session.scalar(select(ExpertRoute.level).where(ExpertRoute.expert_id == passer).limit(1)) is not None
        assert set(
            session.scalars(
                select(ExpertRoute.level).where(ExpertRoute.expert_id == passer, ExpertRoute.skill == "finance")
            )
        ) == {1}
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps(good_row(f"q-{i}")) + "\n" for i in range(4)))
    batch, _ = ingest_file(sessions, path, project="qualified")
    with transaction(sessions) as session:
        dispatch_batch(session, batch, utcnow())
        holders = set(
            session.scalars(
                select(Assignment.expert_id).join(Item, Item.id == Assignment.item_id).where(Item.batch_id == batch)
            )
        )
    assert holders == {passer}

    # Importing the registry again keeps the level an exam granted.
    rows, _ = parse_experts(SAMPLES / "experts.jsonl")
    with transaction(sessions) as session:
        import_experts(session, rows)
    with sessions() as session:
        assert (
            session.scalar(
                select(ExpertSkill.level).where(ExpertSkill.expert_id == passer, ExpertSkill.skill == "finance")
            )
            == 1
        )


def test_a_failed_exam_cools_down_and_the_retakes_run_out(sessions, project) -> None:
    wrong = [{"verdict": "sound"}] * len(_answers(EXAM))
    start = utcnow()
    with transaction(sessions) as session:
        exams.add_exam(session, exams.load_exam(EXAM))
        expert = _expert(session, "expert-00003")
        for attempt in range(3):
            moment = start + dt.timedelta(hours=25 * attempt)
            assert _take(session, expert, "finance-level-1", wrong, moment).status == "failed"
            if attempt == 2:
                break
            with pytest.raises(exams.ExamRefused, match=r"retake .* after"):
                exams.start_attempt(session, expert, "finance-level-1", moment + dt.timedelta(hours=1))
        with pytest.raises(exams.ExamRefused, match="no attempts left"):
            exams.start_attempt(session, expert, "finance-level-1", start + dt.timedelta(days=30))
        standing = next(s for s in exams.standings(session, expert) if s.slug == "finance-level-1")
        assert (standing.status, standing.attempts_used, standing.held_level) == ("no_attempts_left", 3, 0)
        stats = exams.exam_stats(session)
    exam = next(s for s in stats if s["exam"] == "finance-level-1")
    assert (exam["attempts"], exam["finished"], exam["passed"], exam["pass_rate"]) == (3, 3, 0, 0.0)
    # "sound" is right on items 2 and 4: their hit rate is 1, the others' 0.
    assert [i["hit_rate"] for i in exam["items"]] == [0.0, 1.0, 0.0, 1.0, 0.0]


def test_answers_are_checked_and_taken_once(sessions, project) -> None:
    with transaction(sessions) as session:
        exams.add_exam(session, exams.load_exam(EXAM))
        expert = _expert(session, "expert-00004")
        attempt = exams.start_attempt(session, expert, "finance-level-1")
        assert exams.start_attempt(session, expert, "finance-level-1") == attempt  # the open one again
        item = exams.view_attempt(session, expert, attempt).item_id
        assert item is not None
        with pytest.raises(AnswerInvalid, match="verdict"):
            exams.answer_item(session, expert, attempt, item, {"verdict": "perhaps"})
        exams.answer_item(session, expert, attempt, item, {"verdict": "sound"})
        with pytest.raises(ConflictError, match="answered already"):
            exams.answer_item(session, expert, attempt, item, {"verdict": "sound"})
        other = _expert(session, "expert-00005")
        with pytest.raises(Exception, match="no exam attempt"):
            exams.view_attempt(session, other, attempt)


def test_free_text_waits_for_a_grade_then_scores(sessions, project) -> None:
    data = yaml.safe_load(EXAM.read_text())
    data.update(slug="finance-writing", pass_mark=1.0)
    data["labels"].append({"name": "why", "type": "free_text", "min_length": 5})
    data["items"] = [data["items"][0], {"content": {"scenario": "Explain leverage."}, "answer": {"why": "debt"}}]
    spec = exams.parse_exam(data)
    with transaction(sessions) as session:
        exams.add_exam(session, spec)
        expert = _expert(session, "expert-00006")
        first = {"verdict": "context_misread", "why": "the cap is 3.0x"}
        done = _take(
            session,
            expert,
            "finance-writing",
            [first, {"verdict": "sound", "why": "borrowed money multiplies returns"}],
        )
        assert done.status == "pending_review" and done.correct is None
        pending = exams.pending_grades(session)
        assert [(p["exam"], p["position"]) for p in pending] == [("finance-writing", 2)]
        assert exams.grade(session, pending[0]["attempt"], pending[0]["item"], True, "reviewer-1") == "passed"
        with pytest.raises(ConflictError):
            exams.grade(session, pending[0]["attempt"], pending[0]["item"], False, "reviewer-1")
        assert (
            session.scalar(
                select(ExpertSkill.level).where(ExpertSkill.expert_id == expert, ExpertSkill.skill == "finance")
            )
            == 1
        )


def test_training_shows_the_answer_grants_nothing_and_counts_as_evidence(sessions, project) -> None:
    answers = _answers(TRAINING)
    with transaction(sessions) as session:
        exams.add_exam(session, exams.load_exam(TRAINING))
        expert = _expert(session, "expert-00007")
        before = session.scalar(select(ExpertSkill.level).where(ExpertSkill.expert_id == expert).limit(1))
        attempt = exams.start_attempt(session, expert, "onboarding")
        item = exams.view_attempt(session, expert, attempt).item_id
        assert item is not None
        shown = exams.answer_item(session, expert, attempt, item, {"verdict": "sound"})
        assert shown.correct is False and shown.right_answer == answers[0]
        assert shown.explanation and "45 days" in shown.explanation
        for answer in answers[1:]:
            nxt = exams.view_attempt(session, expert, attempt).item_id
            assert nxt is not None
            exams.answer_item(session, expert, attempt, nxt, answer)
        view = exams.view_attempt(session, expert, attempt)
        assert view.status == "passed" and len(view.feedback) == 3
        assert session.scalar(select(ExpertSkill.level).where(ExpertSkill.expert_id == expert).limit(1)) == before
        standing = next(s for s in exams.standings(session, expert) if s.slug == "onboarding")
        assert standing.status == "done"
        # Seen the answers once: no retake to count them again.
        with pytest.raises(exams.ExamRefused, match="completed"):
            exams.start_attempt(session, expert, "onboarding")
        evidence = gather_evidence(session, [expert])[expert]
    assert (evidence.exam_seen, evidence.exam_right) == (3, 2)


def test_an_exam_already_taken_keeps_its_items(sessions, project) -> None:
    spec = exams.load_exam(EXAM)
    with transaction(sessions) as session:
        exams.add_exam(session, spec)
        exams.start_attempt(session, _expert(session, "expert-00008"), spec.slug)
        # The same items again: only the rules change.
        _, created = exams.add_exam(session, spec.model_copy(update={"pass_mark": 0.6}))
        assert not created
        changed = spec.model_copy(update={"items": spec.items[:2]})
        with pytest.raises(Exception, match="taken 1 times"):
            exams.add_exam(session, changed)
