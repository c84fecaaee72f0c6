"""The gold check: each expert's quality in the project, and what follows a likely bad expert.

Evidence is gold answers scored field by field with partial credit (nightshift.fields) and
agreement with final answers (review.reliability); the decision is on the Beta posterior of the
expert's accuracy (review.quality): paused once it is very probably under the project's floor.
A pause sends back only the work whose outcome the expert's votes could have changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, or_, select, update
from sqlalchemy.orm import Session

from nightshift.fields import compared_labels, field_type
from nightshift.platform.audit import record_transitions
from nightshift.platform.heap import without_collection
from nightshift.platform.models import Assignment, Batch, Expert, GoldAnswer, Item, ItemResult, Submission
from nightshift.platform.sql import matches_any, plain_rows, refresh_statistics, update_ids
from nightshift.projects.registry import project_body
from nightshift.projects.spec import ProjectBody
from nightshift.review.aggregate import aggregate_items
from nightshift.review.quality import PeerObservation, Quality, posterior
from nightshift.review.reliability import Evidence, gather_evidence, matcher, not_purged
from nightshift.review.settle import accepted_votes, adjudication_votes

# Passed items weighed again at once when their experts are paused.
REQUEUE_SLICE = 20_000


@dataclass(frozen=True)
class GoldScore:
    expert_id: int
    seen: int
    correct: int
    # Partial credit over the gold answers (a scale by distance, tags by overlap), and agreement
    # with final answers the expert's work has had (review.reliability.gather_evidence).
    credit: float = 0.0
    agreement_seen: int = 0
    agreed: int = 0
    # Answers on items not settled yet, judged against the other votes there (review.reliability).
    peers: tuple[PeerObservation, ...] = ()
    # Review verdicts judged against the item's gold or final answer.
    reviews_seen: int = 0
    reviews_right: int = 0

    @property
    def accuracy(self) -> float:
        return self.correct / self.seen if self.seen else 1.0

    @property
    def judged(self) -> int:
        return self.seen + self.agreement_seen + len(self.peers) + self.reviews_seen

    @property
    def quality(self) -> Quality:
        # Gold with partial credit, in this project; missed deadlines are reliability's, not the gate's.
        return posterior(
            (self.credit, self.seen),
            (self.agreed, self.agreement_seen),
            (self.reviews_right, self.reviews_seen),
            peers=self.peers,
        )


@without_collection
def gold_scores(session: Session, batch_id: int, evidence: Mapping[int, Evidence] | None = None) -> list[GoldScore]:
    """The record in this batch's project of every active expert with judged work in the batch:
    gold answers with partial credit, and (evidence, or read here) agreement with final answers
    and with the votes on open items."""
    project_id = session.scalar(select(Item.project_id).where(Item.batch_id == batch_id).limit(1))
    if project_id is None:
        return []
    project = project_body(session, project_id)
    judged = sorted(
        session.scalars(
            select(Assignment.expert_id)
            .distinct()
            .join(Item, Item.id == Assignment.item_id)
            .join(Expert, Expert.id == Assignment.expert_id)
            .where(
                Item.batch_id == batch_id,
                # Annotators, and reviewers and adjudicators once they have decided something.
                or_(
                    (Assignment.role == "annotate") & (Assignment.status == "accepted"),
                    Assignment.role.in_(("review", "adjudicate")) & Assignment.status.in_(("submitted", "accepted")),
                ),
                # A paused expert is judged no more: a pause is decided once.
                Expert.status == "active",
            )
        )
    )
    if not judged:
        return []
    record = gold_evidence(
        session,
        project_id,
        project,
        Assignment.role == "annotate",
        # Rejected gold answers count too: a careless answer the schema gate caught is still wrong.
        Assignment.status.in_(("accepted", "rejected")),
        matches_any(session, Assignment.expert_id, judged),
    )
    # Most of an expert's work is no gold item, and a random answerer shows there long before the
    # few gold items they get tell.
    agreement = dict(evidence or {})
    if missing := [e for e in judged if e not in agreement]:
        agreement.update(gather_evidence(session, missing))
    return [
        GoldScore(
            expert_id,
            *record.get(expert_id, (0, 0, 0.0)),
            (e := agreement[expert_id]).agreement_seen,
            e.agreed,
            tuple(e.peers),
            e.reviews_seen,
            e.reviews_right,
        )
        for expert_id in judged
    ]


@without_collection
def gold_evidence(
    session: Session, project_id: int, project: ProjectBody, *where: ColumnElement[bool]
) -> dict[int, tuple[int, int, float]]:
    """(gold answers, right ones, partial credit) per expert on the project's gold items, over the
    assignments `where` selects."""
    seen: dict[int, list[float]] = {}
    matches, credit = matcher(project), gold_credit(project)
    for expert_id, answer, gold in plain_rows(
        session,
        select(Assignment.expert_id, Submission.answer, GoldAnswer.answer)
        .join(Submission, Submission.assignment_id == Assignment.id)
        .join(GoldAnswer, GoldAnswer.item_id == Assignment.item_id)
        .join(Item, Item.id == Assignment.item_id)
        # A purged batch's answers are hashes: no evidence (delivery.retention).
        .where(
            Item.project_id == project_id,
            not_purged(),
            *where,
        ),
    ):
        record = seen.setdefault(expert_id, [0, 0, 0.0])
        record[0] += 1
        record[1] += matches(answer, gold)
        record[2] += credit(answer, gold)
    return {expert_id: (int(n), int(right), c) for expert_id, (n, right, c) in seen.items()}


def gold_record(
    session: Session, project_id: int, project: ProjectBody, *where: ColumnElement[bool]
) -> dict[int, tuple[int, int]]:
    """(gold answers, correct ones) per expert: the gold-accuracy bonus's measure."""
    return {e: (n, right) for e, (n, right, _) in gold_evidence(session, project_id, project, *where).items()}


def gold_credit(project: ProjectBody) -> Callable[[dict[str, Any], dict[str, Any]], float]:
    """An answer's credit against a gold answer: the mean over the fields the gold answer has
    (free text aside) of each field type's partial credit."""
    kinds = [(label, field_type(label)) for label in compared_labels(project.labels)]

    def credit(answer: dict[str, Any], reference: dict[str, Any]) -> float:
        scores = [
            kind.gold_credit(label, answer.get(label.name), reference[label.name])
            for label, kind in kinds
            if label.name in reference
        ]
        return sum(scores) / len(scores) if scores else 0.0

    return credit


def _decided_by(session: Session, item_ids: list[int], paused: set[int], project: ProjectBody) -> list[int]:
    """Those of these passed items whose standing result needed the paused experts' votes: aggregated
    without them, a compared field's answer differs from the stored one, or is no longer settled.
    Compared with the stored result rather than the votes aggregated again with theirs: the stored
    one is what would be delivered, and one aggregation of the items is saved. An adjudicated
    item's rulings stay among its votes, as they were when it passed."""
    # Only the compared fields decide (free text has no share, so never settles or unsettles an
    # item): only they are read and aggregated again. Of the stored method, only whether an
    # adjudicator ruled. Whole answers and methods, free text and all, were most of the bytes.
    compared = project.model_copy(update={"labels": compared_labels(project.labels)})
    names = [label.name for label in compared.labels]
    standing = {
        item_id: (dict(zip(names, answer, strict=True)), ruling)
        for item_id, ruling, *answer in plain_rows(
            session,
            select(
                ItemResult.item_id, ItemResult.method["_adjudicated"], *(ItemResult.answer[name] for name in names)
            ).where(matches_any(session, ItemResult.item_id, item_ids)),
        )
    }
    votes = accepted_votes(session, item_ids, fields=names)
    kept = {item_id: [v for v in vs if v.expert_id not in paused] for item_id, vs in votes.items()}
    adjudicated = [i for i, (_, ruling) in standing.items() if ruling is not None]
    for item_id, rulings in adjudication_votes(session, adjudicated).items():
        kept.setdefault(item_id, []).extend(rulings)
    after = aggregate_items({i: vs for i, vs in kept.items() if vs}, compared)

    def decided(item_id: int) -> bool:
        result, stored = after.get(item_id), standing.get(item_id)
        if result is None or stored is None or result.unsettled:
            return True
        return any(result.answer[name] != stored[0].get(name) for name in result.fields)

    return [item_id for item_id in item_ids if decided(item_id)]


def pause_and_requeue(
    session: Session,
    batch_id: int,
    expert_ids: list[int],
    reason: str,
    actor: str,
) -> int:
    """Pause these experts and send back what their work in the batch decided; returns how many
    items went back.

    Their open and not yet settled annotations are rejected: those items get another expert. An
    item that passed (not yet delivered) goes back only if its result needed their vote: aggregated
    without it, the answer differs or is no longer settled. Every other answer stands, and is paid."""
    if not expert_ids:
        return 0
    active = session.scalars(
        select(Expert.id).where(matches_any(session, Expert.id, expert_ids), Expert.status == "active")
    ).all()
    record_transitions(session, "expert", active, "active", "paused", actor, {"reason": reason})
    session.execute(update(Expert).where(Expert.id.in_(expert_ids), Expert.status == "active").values(status="paused"))
    theirs = (
        Assignment.expert_id.in_(expert_ids),
        Assignment.role == "annotate",
        Assignment.status.in_(("assigned", "submitted", "accepted")),
    )
    open_items = select(Item.id).where(
        Item.batch_id == batch_id, Item.status.in_(("assigned", "rework", "adjudication"))
    )
    sent_back = set(
        session.execute(
            update(Assignment)
            .where(*theirs, Assignment.item_id.in_(open_items))
            .values(status="rejected", status_reason=reason)
            .returning(Assignment.item_id)
            .execution_options(synchronize_session=False)
        ).scalars()
    )
    passed = sorted(
        set(
            session.scalars(
                select(Assignment.item_id)
                .join(Item, Item.id == Assignment.item_id)
                .where(*theirs, Item.batch_id == batch_id, Item.status == "passed", Item.is_gold.is_(False))
            )
        )
    )
    if passed:
        project = project_body(session, session.get_one(Batch, batch_id).project_id)
        paused = set(expert_ids)
        decided: list[int] = []
        # A slice of the items at a time: many paused experts of a big batch touch many items.
        for start in range(0, len(passed), REQUEUE_SLICE):
            some = passed[start : start + REQUEUE_SLICE]
            decided += _decided_by(session, some, paused, project)
        if decided:
            session.execute(
                update(Assignment)
                .where(*theirs, matches_any(session, Assignment.item_id, decided))
                .values(status="rejected", status_reason=reason)
                .execution_options(synchronize_session=False)
            )
            for start in range(0, len(decided), 50_000):
                session.execute(
                    delete(ItemResult).where(matches_any(session, ItemResult.item_id, decided[start : start + 50_000]))
                )
        sent_back.update(decided)
    items = sorted(sent_back)
    update_ids(
        session,
        Item,
        items,
        {"status": "rework", "status_reason": "an annotator failed the gold check"},
        Item.status.in_(("assigned", "rework", "passed")),
    )
    refresh_statistics(session, len(items), Assignment, Item)
    return len(items)
