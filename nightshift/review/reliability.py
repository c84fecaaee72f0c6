"""Expert reliability: the mean of the expert's quality posterior (review.quality), from gold
accuracy, agreement with final answers, answers on items not settled yet (against the other votes
there), review verdicts (against the final answer) and missed deadlines.

A new expert starts at the prior's mean, and a few answers move it only a little; a missed
deadline counts as a wrong answer. Dispatch ranks by it, and aggregation weighs votes by it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, case, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from nightshift.experts.routing import refresh_routes
from nightshift.fields import compared_labels, field_type
from nightshift.platform.heap import without_collection
from nightshift.platform.models import (
    Appeal,
    Assignment,
    Batch,
    Exam,
    ExamAnswer,
    ExamAttempt,
    Expert,
    GoldAnswer,
    Item,
    ItemResult,
    Review,
    Submission,
)
from nightshift.platform.sql import matches_any, plain_rows, update_each
from nightshift.projects.registry import project_spec
from nightshift.projects.spec import ProjectBody
from nightshift.review.quality import PeerObservation, Quality, candidate_posterior, posterior

PRIOR = Quality().mean
# Passes over the open items' votes, each judging every answer with the qualities the last pass
# found: a random answerer's disagreements then weigh against them, not against their partners.
PEER_PASSES = 3
# Experts whose evidence is read at once: a group's answers are what gather_evidence holds.
EVIDENCE_GROUP = 2_000


@dataclass
class Evidence:
    gold_seen: int = 0
    gold_correct: int = 0
    agreement_seen: int = 0
    agreed: int = 0
    missed: int = 0
    # Review verdicts judged against the item's gold or final answer.
    reviews_seen: int = 0
    reviews_right: int = 0
    # Answers on items not settled yet, judged against the other experts' votes there.
    peers: list[PeerObservation] = field(default_factory=list)
    # Scored answers in exams and training sets (work.exams): known answers, like gold.
    exam_seen: int = 0
    exam_right: int = 0
    # Submissions flagged as risky (work.signals): each counts like a missed deadline.
    flagged: int = 0

    def quality(self) -> Quality:
        return posterior(
            (self.gold_correct + self.exam_right, self.gold_seen + self.exam_seen),
            (self.agreed, self.agreement_seen),
            (self.reviews_right, self.reviews_seen),
            self.missed + self.flagged,
            self.peers,
        )

    def estimate(self) -> float:
        return self.quality().mean


Matcher = Callable[[dict[str, Any], dict[str, Any]], bool]


def matcher(project: ProjectBody) -> Matcher:
    """Whether an answer agrees with a reference on every label the reference has (free text
    aside): as each field type matches (nightshift.fields): a scale within one step, a choice equal,
    tags overlapping at least half (Jaccard). Built once per project, its labels sorted by kind once:
    the gold gate and reliability compare hundreds of thousands of answers with the same spec."""
    # The field types' order (a scale, then an equal value, then tags), then the labels' (positions differ).
    ranked = sorted(
        (order, position, label.name, kind.matches)
        for position, label in enumerate(project.labels)
        if (order := (kind := field_type(label)).comparison_order) is not None
    )
    compared_fields = [(name, matches) for _, _, name, matches in ranked]

    def agrees(answer: dict[str, Any], reference: dict[str, Any]) -> bool:
        compared = False
        for name, matches in compared_fields:
            if name in reference:
                if not matches(answer.get(name), reference[name]):
                    return False
                compared = True
        return compared

    return agrees


@without_collection
def gather_evidence(session: Session, expert_ids: Sequence[int]) -> dict[int, Evidence]:
    """Every expert's gold and agreement record across all their gated annotations and settled
    adjudications (adjudicators are checked like everyone).

    Read EVIDENCE_GROUP experts at a time, so the answers in memory are a group's, whatever the
    pool; on an open item, a voter of another group counts at their stored quality."""
    evidence: dict[int, Evidence] = defaultdict(Evidence)
    ids = sorted(set(expert_ids))
    for start in range(0, len(ids), EVIDENCE_GROUP):
        _gather_group(session, ids[start : start + EVIDENCE_GROUP], evidence)
    return evidence


def not_purged() -> ColumnElement[bool]:
    """The item's batch still holds its content: a purged batch's answers are hashes, no evidence.

    Asked as "in a batch not purged", not "no purged batch holds it": the planner guessed the
    anti-join of a batch table with no purged batch in it left one item of 100,000, and joined
    every batch's rows by nested loops (a tenth of a review round went to one such read)."""
    return Item.batch_id.in_(select(Batch.id).where(Batch.purged_at.is_(None)))


def _gather_group(session: Session, ids: list[int], evidence: dict[int, Evidence]) -> None:
    gated = (
        matches_any(session, Assignment.expert_id, ids),
        Assignment.role.in_(("annotate", "adjudicate")),
        Assignment.status.in_(("accepted", "rejected")),
    )
    # What each answer is compared to, decoded once per item rather than once per expert on it.
    # An answer with neither is no evidence: not read, not decoded.
    references: dict[int, tuple[Any, Any]] = {}
    projects: set[int] = set()
    for item_id, project_id, gold, final in plain_rows(
        session,
        select(Item.id, Item.project_id, GoldAnswer.answer, ItemResult.answer)
        .outerjoin(GoldAnswer, GoldAnswer.item_id == Item.id)
        .outerjoin(ItemResult, ItemResult.item_id == Item.id)
        .where(
            Item.id.in_(select(Assignment.item_id).where(*gated)),
            or_(GoldAnswer.item_id.is_not(None), ItemResult.item_id.is_not(None)),
            not_purged(),
        ),
    ):
        references[item_id] = (gold, final)
        projects.add(project_id)
    with_reference = or_(
        exists().where(GoldAnswer.item_id == Assignment.item_id),
        exists().where(ItemResult.item_id == Assignment.item_id),
    )
    bodies = {project_id: project_spec(session, project_id).project for project_id in sorted(projects)}
    judges: dict[int, Matcher] = {project_id: matcher(body) for project_id, body in bodies.items()}
    # Of each answer only the fields a matcher compares, taken out by the database: decoding whole
    # answers (free text and all) was most of the time of reading the evidence.
    names = sorted({label.name for body in bodies.values() for label in compared_labels(body.labels)})
    rows = plain_rows(
        session,
        select(
            Assignment.expert_id,
            Item.project_id,
            Assignment.item_id,
            Submission.id,
            *(Submission.answer[name] for name in names),
        )
        .join(Submission, Submission.assignment_id == Assignment.id)
        .join(Item, Item.id == Assignment.item_id)
        .where(*gated, with_reference, not_purged()),
    ).all()
    # An annotation whose appeal was upheld counts as right, whatever it was judged by (review.appeals).
    upheld = set(
        session.scalars(
            select(Appeal.submission_id).where(matches_any(session, Appeal.expert_id, ids), Appeal.status == "upheld")
        )
    )
    for expert_id, project_id, item_id, submission_id, *values in rows:
        record = evidence[expert_id]
        # Read apart, a reference can be gone by now (an item sent back) or new: that answer says
        # nothing. An item with a reference had its project's judge built above.
        gold, final = references.get(item_id, (None, None))
        if gold is not None:
            record.gold_seen += 1
            answer = dict(zip(names, values, strict=True))
            record.gold_correct += submission_id in upheld or judges[project_id](answer, gold)
        elif final is not None:
            record.agreement_seen += 1
            answer = dict(zip(names, values, strict=True))
            record.agreed += submission_id in upheld or judges[project_id](answer, final)
    for expert_id, missed, flagged in session.execute(
        select(Expert.id, Expert.missed_count, Expert.flagged_submissions).where(matches_any(session, Expert.id, ids))
    ):
        evidence[expert_id].missed = missed
        evidence[expert_id].flagged = flagged
    for expert_id, seen, right in session.execute(
        select(ExamAttempt.expert_id, func.count(), func.sum(case((ExamAnswer.correct.is_(True), 1), else_=0)))
        .join(ExamAttempt, ExamAttempt.id == ExamAnswer.attempt_id)
        .join(Exam, Exam.id == ExamAttempt.exam_id)
        .where(
            matches_any(session, ExamAttempt.expert_id, ids),
            ExamAnswer.correct.is_not(None),
            # A training set shows each right answer: only a first attempt says what the expert knew.
            or_(Exam.kind == "exam", ExamAttempt.attempt_no == 1),
        )
        .group_by(ExamAttempt.expert_id)
    ):
        evidence[expert_id].exam_seen, evidence[expert_id].exam_right = int(seen), int(right or 0)
    _judge_open_items(session, evidence, ids, with_reference)
    _judge_reviews(session, evidence, ids, judges)


def _judge_reviews(session: Session, evidence: dict[int, Evidence], ids: list[int], judges: dict[int, Matcher]) -> None:
    """Reviewers are checked like everyone: each verdict against the item's gold or final answer.
    An approval is right when the annotation agrees with it, a rejection when it does not, a
    correction when the corrected answer does. A reviewer who approves everything shows here."""
    reviewer = aliased(Assignment)
    subject = aliased(Assignment)
    rows = plain_rows(
        session,
        select(
            reviewer.expert_id,
            Item.project_id,
            Review.id,
            Review.decision,
            Review.corrected_answer,
            Submission.answer,
            GoldAnswer.answer,
            ItemResult.answer,
        )
        .select_from(Review)
        .join(reviewer, reviewer.id == Review.reviewer_assignment_id)
        .join(Submission, Submission.id == Review.submission_id)
        .join(subject, subject.id == Submission.assignment_id)
        .join(Item, Item.id == subject.item_id)
        .outerjoin(GoldAnswer, GoldAnswer.item_id == Item.id)
        .outerjoin(ItemResult, ItemResult.item_id == Item.id)
        .where(
            matches_any(session, reviewer.expert_id, ids),
            or_(GoldAnswer.item_id.is_not(None), ItemResult.item_id.is_not(None)),
            not_purged(),
        ),
    ).all()
    # A review an upheld appeal overturned was wrong, whatever the final answer says.
    overturned = set(
        session.scalars(
            select(Appeal.review_id)
            .join(Review, Review.id == Appeal.review_id)
            .join(reviewer, reviewer.id == Review.reviewer_assignment_id)
            .where(matches_any(session, reviewer.expert_id, ids), Appeal.status == "upheld")
        )
    )
    for expert_id, project_id, review_id, decision, corrected, answer, gold, final in rows:
        if review_id in overturned:
            evidence[expert_id].reviews_seen += 1
            continue
        if project_id not in judges:
            judges[project_id] = matcher(project_spec(session, project_id).project)
        agrees = judges[project_id]
        reference = gold if gold is not None else final
        if decision == "approve":
            right = agrees(answer, reference)
        elif decision == "reject":
            right = not agrees(answer, reference)
        else:
            right = corrected is not None and agrees(corrected, reference)
        record = evidence[expert_id]
        record.reviews_seen += 1
        record.reviews_right += right


def peer_key(project: ProjectBody) -> tuple[Callable[[Mapping[str, Any]], tuple[Any, ...]], int] | None:
    """How answers on an open item are told apart for the peer judgement (the values of the
    project's fields with a fixed set of answers), and how many distinct answers there are; None
    where no field has a fixed set (scales and free text are judged only once an item settles)."""
    fields = [
        (label.name, n)
        for label in project.labels
        if (kind := field_type(label)).comparison_order is not None and (n := kind.alternatives(label))
    ]
    if not fields:
        return None
    names = [name for name, _ in fields]
    alternatives = 1
    for _, n in fields:
        alternatives *= n

    def key(answer: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(answer.get(name) for name in names)

    return key, alternatives


def _judge_open_items(
    session: Session,
    evidence: dict[int, Evidence],
    ids: list[int],
    with_reference: Any,
) -> None:
    """Peer evidence: each of these experts' accepted answers on an item with neither a gold nor a
    final answer yet, against the other accepted votes there, weighed by the voters' qualities
    (these experts' as this judgement finds them, the others' as stored)."""
    theirs = select(Assignment.item_id).where(
        matches_any(session, Assignment.expert_id, ids),
        Assignment.role == "annotate",
        Assignment.status == "accepted",
        ~with_reference,
    )
    rows = plain_rows(
        session,
        select(
            Assignment.expert_id,
            Assignment.item_id,
            Item.project_id,
            Submission.answer,
            Expert.reliability,
        )
        .join(Submission, Submission.assignment_id == Assignment.id)
        .join(Item, Item.id == Assignment.item_id)
        .join(Expert, Expert.id == Assignment.expert_id)
        .where(Assignment.item_id.in_(theirs), Assignment.role == "annotate", Assignment.status == "accepted"),
    ).all()
    if not rows:
        return
    keys: dict[int, tuple[Callable[[Mapping[str, Any]], tuple[Any, ...]], int] | None] = {}
    votes: dict[int, list[tuple[int, tuple[Any, ...]]]] = defaultdict(list)
    alternatives_of: dict[int, int] = {}
    quality: dict[int, float] = {}
    for expert_id, item_id, project_id, answer, stored in rows:
        if project_id not in keys:
            keys[project_id] = peer_key(project_spec(session, project_id).project)
        shape = keys[project_id]
        if shape is None:
            continue
        key, alternatives = shape
        votes[item_id].append((expert_id, key(answer)))
        alternatives_of[item_id] = alternatives
        quality.setdefault(expert_id, stored if stored is not None else PRIOR)
    judged = set(ids)
    for _ in range(PEER_PASSES):
        observations: dict[int, list[PeerObservation]] = defaultdict(list)
        for item_id, item_votes in votes.items():
            if len(item_votes) < 2:
                continue
            k = alternatives_of[item_id]
            for n, (expert_id, answer) in enumerate(item_votes):
                if expert_id not in judged:
                    continue
                others = [(a, quality[e]) for m, (e, a) in enumerate(item_votes) if m != n]
                observations[expert_id].append(PeerObservation(_share_of(answer, others, k), 1 / max(k - 1, 1)))
        for expert_id in judged:
            evidence[expert_id].peers = observations.get(expert_id, [])
            if expert_id in quality:
                quality[expert_id] = evidence[expert_id].estimate()


def _share_of(answer: object, others: Sequence[tuple[object, float]], alternatives: int) -> float:
    """The probability, from the others' votes alone, that `answer` is the right one."""
    _, _, shares = candidate_posterior(others, alternatives)
    if answer in shares:
        return shares[answer]
    unseen = max(max(alternatives, len(shares), 2) - len(shares), 1)
    return max(1.0 - sum(shares.values()), 0.0) / unseen


def update_reliability(
    session: Session,
    expert_ids: Sequence[int],
    evidence: Mapping[int, Evidence] | None = None,
) -> dict[int, float]:
    """Recompute these experts' reliability and refresh their routes, so dispatch uses it next.
    evidence: already gathered for these experts."""
    if evidence is None:
        evidence = gather_evidence(session, expert_ids)
    values = {expert_id: round(record.estimate(), 4) for expert_id, record in evidence.items()}
    update_each(session, Expert, "reliability", values)
    refresh_routes(session, list(values))
    return values


def experts_of_batch(session: Session, batch_id: int) -> list[int]:
    return list(
        session.scalars(
            select(Assignment.expert_id)
            .distinct()
            .join(Item, Item.id == Assignment.item_id)
            .where(Item.batch_id == batch_id)
        )
    )
