"""Qualification: exams that grant a skill at a level, and training sets that teach before work.

An exam is a set of items with known answers for one skill. An expert takes it in the workbench,
one item at a time; each answer is scored as it arrives (a free-text answer waits for a reviewer's
grade). Scoring the pass mark grants the skill at the exam's level, which is what dispatch asks of
a project that names a `skill_level`; failing starts a cool-down and uses one of the retakes.

A training set (kind `training`) is the same form with the other purpose: after each answer the
expert sees the right one and why, and it grants nothing. Exam and training answers alike are gold
evidence for the quality model (review.reliability), never work: not delivered, not paid.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from sqlalchemy import case, delete, func, select, update
from sqlalchemy.orm import Session

from nightshift.experts.registry import skill_levels
from nightshift.experts.routing import ANY_SKILL, refresh_routes
from nightshift.fields import field_type
from nightshift.platform.audit import record_transition
from nightshift.platform.errors import NightshiftError, NotFoundError, SpecError
from nightshift.platform.models import Exam, ExamAnswer, ExamAttempt, ExamItem, Expert, ExpertSkill, as_utc, utcnow
from nightshift.platform.sql import insert_ignoring_conflicts
from nightshift.projects.spec import SLUG, Label
from nightshift.work.access import AnswerInvalid, ConflictError, answer_object
from nightshift.work.submissions import label_errors

MAX_EXAM_ITEMS = 200
MAX_CONTENT = 20_000


class ExamRefused(NightshiftError):
    """The expert may not start this exam now: passed already, cooling down, or out of attempts."""


class ExamItemSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    content: dict[str, str] = Field(min_length=1, description="What the expert reads: field name -> text.")
    answer: dict[str, Any] = Field(min_length=1)
    explanation: str = Field(default="", max_length=MAX_CONTENT)


class ExamSpec(BaseModel):
    """An exam or training set as ops write it (YAML): its skill, rules, answer fields and items."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slug: str = Field(pattern=SLUG)
    title: str = Field(min_length=1, max_length=200)
    kind: Literal["exam", "training"] = "exam"
    skill: str = Field(min_length=1, max_length=64)
    level: int = Field(default=1, ge=1, le=5)
    pass_mark: float = Field(default=0.8, ge=0, le=1)
    cooldown_hours: float = Field(default=24, ge=0, le=24 * 365)
    max_attempts: int = Field(default=3, ge=1, le=100)
    instructions: str = Field(default="", max_length=MAX_CONTENT)
    labels: list[Label] = Field(min_length=1)
    items: list[ExamItemSpec] = Field(min_length=1, max_length=MAX_EXAM_ITEMS)

    @model_validator(mode="after")
    def _answers_fit(self) -> ExamSpec:
        for label in self.labels:
            kind = field_type(label)
            if kind.needs_responses or kind.needs_runs:
                raise ValueError(f"labels: a {label.type} label needs a model's answers, which an exam does not have")
        for number, item in enumerate(self.items, start=1):
            for text in item.content.values():
                if len(text) > MAX_CONTENT:
                    raise ValueError(f"items.{number}: content over {MAX_CONTENT} characters")
            errors = answer_problems(self.labels, item.answer, key=True)
            if errors:
                name, why = next(iter(errors.items()))
                raise ValueError(f"items.{number}.answer.{name}: {why}")
        return self


_LABELS: TypeAdapter[list[Label]] = TypeAdapter(list[Label])


def answer_problems(labels: list[Any], answer: dict[str, Any], key: bool = False) -> dict[str, str]:
    """Field name -> reason for every field the answer (or, key: the answer key) gets wrong."""
    return label_errors(answer, labels, unknown="not a field of this exam", key=key)


def score(labels: list[Any], answer: dict[str, Any], reference: dict[str, Any]) -> bool | None:
    """Whether the answer matches the reference on every field with a fixed answer (each as its
    field type compares); None when no such field is in the reference: a reviewer grades it."""
    compared = False
    for label in labels:
        kind = field_type(label)
        if kind.comparison_order is None or label.name not in reference:
            continue
        if not kind.matches(answer.get(label.name), reference[label.name]):
            return False
        compared = True
    return True if compared else None


def load_exam(path: Path) -> ExamSpec:
    if not path.is_file():
        raise SpecError(f"exam file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    return parse_exam(data, str(path))


def parse_exam(data: Any, source: str = "exam") -> ExamSpec:
    try:
        return ExamSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise SpecError(f"{source}: {where}: {first['msg']}") from None


def add_exam(session: Session, spec: ExamSpec) -> tuple[int, bool]:
    """Create the exam, or update it in place; (id, created). Its items can change only while
    nobody has taken it: an attempt's answers name its items."""
    found = session.scalars(select(Exam).where(Exam.slug == spec.slug).with_for_update()).one_or_none()
    values = spec.model_dump(mode="json", exclude={"items"})
    if found is None:
        exam = Exam(**values)
        session.add(exam)
        session.flush()
        _write_items(session, exam.id, spec)
        return exam.id, True
    stored = [
        (content, answer, explanation)
        for content, answer, explanation in session.execute(
            select(ExamItem.content, ExamItem.answer, ExamItem.explanation)
            .where(ExamItem.exam_id == found.id)
            .order_by(ExamItem.position)
        )
    ]
    wanted = [(i.content, i.answer, i.explanation) for i in spec.items]
    if stored != wanted or found.labels != values["labels"]:
        taken = session.scalar(select(func.count()).where(ExamAttempt.exam_id == found.id))
        if taken:
            raise NightshiftError(f"exam {spec.slug!r} has been taken {taken} times: give changed items a new slug")
        session.execute(delete(ExamItem).where(ExamItem.exam_id == found.id))
        session.flush()
        _write_items(session, found.id, spec)
    session.execute(update(Exam).where(Exam.id == found.id).values(**values))
    return found.id, False


def _write_items(session: Session, exam_id: int, spec: ExamSpec) -> None:
    session.add_all(
        ExamItem(exam_id=exam_id, position=n, content=i.content, answer=i.answer, explanation=i.explanation)
        for n, i in enumerate(spec.items, start=1)
    )


def _exam(session: Session, slug: str) -> Exam:
    exam = session.scalars(select(Exam).where(Exam.slug == slug)).one_or_none()
    if exam is None:
        raise NotFoundError(f"no exam {slug!r}")
    return exam


@dataclass
class ExamStanding:
    """One exam as an expert sees it: what they hold, what they may do next."""

    slug: str
    title: str
    kind: str
    skill: str
    level: int
    held_level: int
    attempts_used: int
    max_attempts: int
    status: str  # passed | open | pending_review | cooling_down | no_attempts_left | available | done
    open_attempt: int | None = None
    available_at: dt.datetime | None = None
    last_score: float | None = None


def standings(session: Session, expert_id: int, now: dt.datetime | None = None) -> list[ExamStanding]:
    """Every exam and training set with the expert's standing in it, training first."""
    moment = now or utcnow()
    levels = skill_levels(session, expert_id)
    attempts: dict[int, list[ExamAttempt]] = defaultdict(list)
    for attempt in session.scalars(
        select(ExamAttempt).where(ExamAttempt.expert_id == expert_id).order_by(ExamAttempt.attempt_no)
    ):
        attempts[attempt.exam_id].append(attempt)
    found = []
    for exam in session.scalars(select(Exam).order_by(Exam.kind.desc(), Exam.skill, Exam.level, Exam.slug)):
        mine = attempts.get(exam.id, [])
        standing = ExamStanding(
            exam.slug,
            exam.title,
            exam.kind,
            exam.skill,
            exam.level,
            int(levels.get(exam.skill, 0)),
            len(mine),
            exam.max_attempts,
            "available",
        )
        if mine:
            standing.last_score = mine[-1].score
        standing.status, standing.open_attempt, standing.available_at = _next_step(exam, mine, standing, moment)
        found.append(standing)
    return found


def _next_step(
    exam: Exam, mine: list[ExamAttempt], standing: ExamStanding, now: dt.datetime
) -> tuple[str, int | None, dt.datetime | None]:
    last = mine[-1] if mine else None
    if last is not None and last.status in ("open", "pending_review"):
        return last.status, last.id, None
    if exam.kind == "exam" and (standing.held_level >= exam.level or any(a.status == "passed" for a in mine)):
        return "passed", None, None
    if exam.kind == "training" and any(a.status == "passed" for a in mine):
        return "done", None, None
    if len(mine) >= exam.max_attempts:
        return "no_attempts_left", None, None
    if last is not None and last.status == "failed" and last.finished_at is not None:
        until = as_utc(last.finished_at) + dt.timedelta(hours=exam.cooldown_hours)
        if until > now:
            return "cooling_down", None, until
    return "available", None, None


def training_due(session: Session, expert_id: int) -> list[ExamStanding]:
    """The training sets an expert has not finished, for a skill they hold (or any skill)."""
    held = skill_levels(session, expert_id)
    return [
        s
        for s in standings(session, expert_id)
        if s.kind == "training" and s.status in ("available", "open") and (s.skill == ANY_SKILL or s.skill in held)
    ]


def start_attempt(session: Session, expert_id: int, slug: str, now: dt.datetime | None = None) -> int:
    """The expert's open attempt at this exam, or a new one if the rules allow; ExamRefused says why not."""
    moment = now or utcnow()
    # One expert's starts take turns (two tabs): both would otherwise count the same attempts.
    status = session.scalar(select(Expert.status).where(Expert.id == expert_id).with_for_update())
    if status != "active":
        raise ExamRefused("only active experts take exams")
    exam = _exam(session, slug)
    standing = next(s for s in standings(session, expert_id, moment) if s.slug == slug)
    if standing.open_attempt is not None:
        return standing.open_attempt
    refusals = {
        "passed": f"you passed {exam.title} already",
        "done": f"you completed {exam.title} already",
        "no_attempts_left": f"no attempts left at {exam.title} ({exam.max_attempts} taken)",
        "cooling_down": f"you may retake {exam.title} after {standing.available_at:%Y-%m-%d %H:%M} UTC"
        if standing.available_at
        else "",
    }
    if standing.status in ("passed", "done", "no_attempts_left", "cooling_down"):
        raise ExamRefused(refusals[standing.status] or f"you completed {exam.title} already")
    attempt = ExamAttempt(
        exam_id=exam.id, expert_id=expert_id, attempt_no=standing.attempts_used + 1, status="open", started_at=moment
    )
    session.add(attempt)
    session.flush()
    return attempt.id


@dataclass
class AttemptView:
    attempt_id: int
    slug: str
    title: str
    kind: str
    instructions: str
    labels: list[dict[str, Any]]
    status: str
    score: float | None
    pass_mark: float
    answered: int
    total: int
    # The next item to answer (None when all are answered).
    item_id: int | None = None
    content: dict[str, str] = field(default_factory=dict)
    # Training only: each answered item with the right answer and why.
    feedback: list[dict[str, Any]] = field(default_factory=list)


def view_attempt(session: Session, expert_id: int, attempt_id: int) -> AttemptView:
    attempt = session.get(ExamAttempt, attempt_id)
    if attempt is None or attempt.expert_id != expert_id:
        raise NotFoundError(f"no exam attempt {attempt_id}")
    exam = session.get_one(Exam, attempt.exam_id)
    items = session.scalars(select(ExamItem).where(ExamItem.exam_id == exam.id).order_by(ExamItem.position)).all()
    given = {a.exam_item_id: a for a in session.scalars(select(ExamAnswer).where(ExamAnswer.attempt_id == attempt_id))}
    view = AttemptView(
        attempt.id,
        exam.slug,
        exam.title,
        exam.kind,
        exam.instructions,
        exam.labels,
        attempt.status,
        attempt.score,
        exam.pass_mark,
        len(given),
        len(items),
    )
    following = next((i for i in items if i.id not in given), None)
    if following is not None and attempt.status == "open":
        view.item_id, view.content = following.id, following.content
    if exam.kind == "training":
        view.feedback = [
            {
                "position": i.position,
                "content": i.content,
                "answer": given[i.id].answer,
                "right_answer": i.answer,
                "correct": given[i.id].correct,
                "explanation": i.explanation,
            }
            for i in items
            if i.id in given
        ]
    return view


@dataclass
class Scored:
    correct: bool | None
    finished: bool
    status: str
    # Training only: shown at once.
    right_answer: dict[str, Any] | None = None
    explanation: str | None = None


def answer_item(
    session: Session, expert_id: int, attempt_id: int, item_id: int, answer: Any, now: dt.datetime | None = None
) -> Scored:
    """Record and score one answer of an open attempt; the last one finishes the attempt."""
    moment = now or utcnow()
    # Locked: two last answers at once must not both count the other's missing and leave it open.
    attempt = session.scalars(select(ExamAttempt).where(ExamAttempt.id == attempt_id).with_for_update()).one_or_none()
    if attempt is None or attempt.expert_id != expert_id:
        raise NotFoundError(f"no exam attempt {attempt_id}")
    if session.scalar(select(Expert.status).where(Expert.id == expert_id)) != "active":
        raise ConflictError("only active experts take exams")
    if attempt.status != "open":
        raise ConflictError(f"exam attempt {attempt_id} is {attempt.status}, no longer open")
    item = session.get(ExamItem, item_id)
    if item is None or item.exam_id != attempt.exam_id:
        raise NotFoundError(f"no item {item_id} in this exam")
    exam = session.get_one(Exam, attempt.exam_id)
    labels = _LABELS.validate_python(exam.labels)
    checked = answer_object(answer)
    problems = answer_problems(labels, checked)
    if problems:
        raise AnswerInvalid(problems)
    correct = score(labels, checked, item.answer)
    row = {
        "attempt_id": attempt_id,
        "exam_item_id": item_id,
        "answer": checked,
        "correct": correct,
        "answered_at": moment,
    }
    if not insert_ignoring_conflicts(session, ExamAnswer, [row], ["attempt_id", "exam_item_id"]):
        raise ConflictError("that item is answered already")
    status = _finish_if_complete(session, attempt_id, moment)
    training = exam.kind == "training"
    return Scored(
        correct,
        status != "open",
        status,
        item.answer if training else None,
        item.explanation if training else None,
    )


def _finish_if_complete(session: Session, attempt_id: int, now: dt.datetime) -> str:
    """Close the attempt once every item is answered: scored, or waiting for grades. Its status."""
    attempt = session.get_one(ExamAttempt, attempt_id)
    session.refresh(attempt)
    exam = session.get_one(Exam, attempt.exam_id)
    total = session.scalar(select(func.count()).where(ExamItem.exam_id == exam.id)) or 0
    marks = list(session.scalars(select(ExamAnswer.correct).where(ExamAnswer.attempt_id == attempt_id)))
    if len(marks) < total or attempt.status not in ("open", "pending_review"):
        return attempt.status
    if any(mark is None for mark in marks):
        new_status, result = "pending_review", None
    else:
        result = sum(1 for mark in marks if mark) / total
        new_status = "passed" if result >= exam.pass_mark else "failed"
    # Conditional on the status it was read in: an attempt is closed once.
    closed = session.execute(
        update(ExamAttempt)
        .where(ExamAttempt.id == attempt_id, ExamAttempt.status == attempt.status)
        .values(status=new_status, score=result, finished_at=now if new_status != "pending_review" else None)
        .execution_options(synchronize_session=False)
    )
    if closed.rowcount != 1:  # type: ignore[attr-defined]
        raise ConflictError(f"exam attempt {attempt_id} was closed meanwhile")
    record_transition(session, "exam_attempt", attempt_id, attempt.status, new_status, "scoring")
    if new_status == "passed" and exam.kind == "exam":
        grant(session, attempt.expert_id, exam.skill, exam.level, f"exam {exam.slug}")
    return new_status


def grant(session: Session, expert_id: int, skill: str, level: int, why: str) -> None:
    """Hold the skill at `level` at least (never lowers a higher grant), and route by it at once."""
    current = session.scalar(
        select(ExpertSkill.level).where(ExpertSkill.expert_id == expert_id, ExpertSkill.skill == skill)
    )
    if current is None:
        insert_ignoring_conflicts(
            session, ExpertSkill, [{"expert_id": expert_id, "skill": skill, "level": level}], ["expert_id", "skill"]
        )
    session.execute(
        update(ExpertSkill)
        .where(ExpertSkill.expert_id == expert_id, ExpertSkill.skill == skill, ExpertSkill.level < level)
        .values(level=level)
    )
    record_transition(session, "expert_skill", expert_id, f"{skill}@{current or 0}", f"{skill}@{level}", why)
    refresh_routes(session, [expert_id])


def pending_grades(session: Session) -> list[dict[str, Any]]:
    """Free-text exam answers waiting for a reviewer's grade, oldest first (no expert named)."""
    rows = session.execute(
        select(ExamAnswer.attempt_id, ExamAnswer.exam_item_id, Exam.slug, ExamItem.position, ExamAnswer.answer)
        .join(ExamAttempt, ExamAttempt.id == ExamAnswer.attempt_id)
        .join(Exam, Exam.id == ExamAttempt.exam_id)
        .join(ExamItem, ExamItem.id == ExamAnswer.exam_item_id)
        .where(ExamAnswer.correct.is_(None))
        .order_by(ExamAnswer.answered_at)
    )
    return [
        {"attempt": a, "item": i, "exam": slug, "position": pos, "answer": answer} for a, i, slug, pos, answer in rows
    ]


def grade(session: Session, attempt_id: int, item_id: int, correct: bool, grader: str) -> str:
    """A reviewer's grade of a free-text answer; the attempt is scored once none waits. Its status."""
    # Locked, as in answer_item: two last grades at once must not leave the attempt waiting.
    session.execute(select(ExamAttempt.id).where(ExamAttempt.id == attempt_id).with_for_update())
    graded = session.execute(
        update(ExamAnswer)
        .where(ExamAnswer.attempt_id == attempt_id, ExamAnswer.exam_item_id == item_id, ExamAnswer.correct.is_(None))
        .values(correct=correct, graded_by=grader[:100])
        .execution_options(synchronize_session=False)
    )
    if graded.rowcount != 1:  # type: ignore[attr-defined]
        raise ConflictError(f"no ungraded answer of item {item_id} in attempt {attempt_id}")
    return _finish_if_complete(session, attempt_id, utcnow())


def exam_stats(session: Session) -> list[dict[str, Any]]:
    """Per exam: attempts, finished, passed, pass rate, and each item's hit rate (share answered right)."""
    found = []
    for exam in session.scalars(select(Exam).order_by(Exam.slug)):
        counts = dict(
            session.execute(
                select(ExamAttempt.status, func.count())
                .where(ExamAttempt.exam_id == exam.id)
                .group_by(ExamAttempt.status)
            ).all()
        )
        finished = counts.get("passed", 0) + counts.get("failed", 0)
        items = [
            {
                "position": position,
                "answered": int(answered),
                "right": int(right or 0),
                "hit_rate": round(int(right or 0) / int(graded), 4) if graded else None,
            }
            for position, answered, graded, right in session.execute(
                select(
                    ExamItem.position,
                    func.count(ExamAnswer.attempt_id),
                    func.count(ExamAnswer.correct),
                    func.sum(case((ExamAnswer.correct.is_(True), 1), else_=0)),
                )
                .outerjoin(ExamAnswer, ExamAnswer.exam_item_id == ExamItem.id)
                .where(ExamItem.exam_id == exam.id)
                .group_by(ExamItem.position)
                .order_by(ExamItem.position)
            )
        ]
        found.append(
            {
                "exam": exam.slug,
                "kind": exam.kind,
                "skill": exam.skill,
                "level": exam.level,
                "attempts": sum(counts.values()),
                "finished": finished,
                "passed": counts.get("passed", 0),
                "pass_rate": round(counts.get("passed", 0) / finished, 4) if finished else None,
                "items": items,
            }
        )
    return found
