"""Review: aggregate each item's answers, send back or on to adjudication what fails, move the
batch on."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, exists, func, null, select
from sqlalchemy.orm import Session

from nightshift.experts.registry import holding_all
from nightshift.platform.audit import record_transition
from nightshift.platform.errors import NightshiftError
from nightshift.platform.heap import without_collection
from nightshift.platform.models import (
    Assignment,
    Batch,
    Expert,
    ExpertLanguage,
    Item,
    ItemResult,
    RecordVerdict,
    Review,
    Submission,
)
from nightshift.platform.sql import (
    insert_ignoring_conflicts,
    insert_new,
    matches_any,
    plain_rows,
    refresh_statistics,
    update_grouped,
    update_ids,
)
from nightshift.projects.registry import batch_body
from nightshift.review.aggregate import Aggregate, Vote, aggregate_items
from nightshift.review.agreement import field_alphas
from nightshift.review.gates import WHOLE_BATCH, AgreementGate, GateOutcome, ItemRange, in_items, record_gate
from nightshift.review.policy import rework_spent, spent_rounds
from nightshift.work.submissions import KnownAnswers, answers_of

if TYPE_CHECKING:
    from nightshift.review.reliability import Evidence


@dataclass
class ReviewReport:
    gated: int = 0
    rejected: int = 0
    passed_items: int = 0
    rework_items: int = 0
    more_overlap_items: int = 0
    adjudication_items: int = 0
    batch_status: str = ""
    failures: dict[int, str] = field(default_factory=dict)
    agreement: GateOutcome | None = None
    # The quality gate (review.rounds): experts it paused and the items their votes had decided.
    quality: GateOutcome | None = None
    paused_experts: int = 0
    requeued_items: int = 0
    # Annotations the submissions gate left for a reviewer (review.policy.awaiting_review).
    awaiting_review: int = 0
    # The evidence the quality gate judged the batch's experts on (review.rounds.settle_experts).
    evidence: Mapping[int, Evidence] | None = None

    def add_items(self, part: ReviewReport) -> None:
        """Count in what one part of a round did with its items (tasks.review.review_part)."""
        self.passed_items += part.passed_items
        self.rework_items += part.rework_items
        self.more_overlap_items += part.more_overlap_items
        self.adjudication_items += part.adjudication_items


@without_collection
def aggregate_ready_items(
    session: Session,
    batch_id: int,
    report: ReviewReport,
    agreement_gate: AgreementGate,
    known: KnownAnswers | None = None,
    items_in: ItemRange = WHOLE_BATCH,
) -> None:
    """Items whose annotations are all gated: aggregate them, gate their agreement, and pass them,
    ask for one more expert, send them to an adjudicator, or back for rework. Items an adjudicator
    has decided pass with that decision. known: answers already read (the review's one read).
    items_in: the part of the batch to settle (review.gates.review_parts); adjudications, which
    are few, are settled with the first part."""
    project = batch_body(session, batch_id)
    if items_in[0] is None:
        report.passed_items += settle_adjudications(session, batch_id)
    # NOT EXISTS, an anti-join, rather than NOT IN (subquery): once the planner thinks the
    # subquery's rows will not fit in work_mem, NOT IN scans them again for every item (minutes).
    pending = exists().where(
        Assignment.item_id == Item.id,
        Assignment.role == "annotate",
        Assignment.status.in_(("assigned", "submitted")),
    )
    items = {
        item_id: (1 if is_gold else target or project.overlap.min, is_gold)
        for item_id, target, is_gold in session.execute(
            select(Item.id, Item.overlap_target, Item.is_gold).where(
                Item.batch_id == batch_id, Item.status == "assigned", in_items(Item.id, items_in), ~pending
            )
        )
    }
    if not items:
        return
    votes = accepted_votes(session, list(items), known)
    rework = [item_id for item_id, (need, _) in items.items() if len(votes.get(item_id, [])) < need]
    complete = {item_id: votes[item_id] for item_id in items if item_id not in rework}
    aggregates = aggregate_items(complete, project)
    # Gold items are scored against their known answer, never adjudicated or given more experts.
    judged = {item_id: vs for item_id, vs in complete.items() if not items[item_id][1]}
    rows = [
        {
            "item_id": item_id,
            "agreement": aggregates[item_id].agreement,
            "unsettled_fields": list(aggregates[item_id].unsettled),
        }
        for item_id in judged
    ]
    alphas = field_alphas({item_id: [v.answer for v in vs] for item_id, vs in judged.items()}, project)
    outcome = report.agreement = agreement_gate(rows, alphas, project)
    if outcome.evaluated_ids:
        record_gate(session, batch_id, outcome)
    more: list[tuple[int, int]] = []
    adjudicate: dict[int, str] = {}
    results: list[dict[str, Any]] = []
    for item_id, result in aggregates.items():
        need = items[item_id][0]
        why = outcome.failures.get(item_id)
        if why is None:
            results.append(_result_row(item_id, result, complete[item_id]))
        elif len(complete[item_id]) < project.overlap.max:
            # Unsettled: one more expert at a time, up to the cap; only then an adjudicator.
            more.append((item_id, max(need, len(complete[item_id])) + 1))
        else:
            adjudicate[item_id] = why
    # An item no adjudicator could take would hold the batch forever: it passes on its aggregate,
    # saying so, and ops hear of it through the gate's failure.
    stranded = set(adjudicate) - adjudicator_available(
        session, list(adjudicate), project.required_skills, project.skill_level
    )
    for item_id in sorted(stranded):
        note = f"{adjudicate.pop(item_id)}; no adjudicator available"
        results.append(_result_row(item_id, aggregates[item_id], complete[item_id], note))
    # Rework is bounded: an item whose annotations were rejected rework_rounds times goes to an
    # adjudicator (one who can take it; else it goes round again, as before the bound).
    spent = rework_spent(session, rework, project.rework_rounds)
    spent &= adjudicator_available(session, sorted(spent), project.required_skills, project.skill_level)
    rework = [item_id for item_id in rework if item_id not in spent]
    adjudicate.update(dict.fromkeys(spent, spent_rounds(project.rework_rounds)))
    # An item in review has no result yet (sending one back drops it): nearly always all new.
    insert_new(session, ItemResult, results, ["item_id"])
    update_ids(session, Item, [r["item_id"] for r in results], {"status": "passed"})
    update_ids(
        session, Item, rework, {"status": "rework", "status_reason": "annotations rejected by the submissions gate"}
    )
    update_grouped(
        session,
        Item,
        dict(more),
        lambda target: {
            "status": "rework",
            "overlap_target": target,
            "status_reason": "annotators disagree: one more expert",
        },
    )
    send_to_adjudication(session, adjudicate)
    refresh_statistics(session, len(results) + len(rework) + len(more) + len(adjudicate), Item, ItemResult)
    report.passed_items += len(results)
    report.rework_items += len(rework)
    report.more_overlap_items += len(more)
    report.adjudication_items += len(adjudicate)


def _result_row(item_id: int, result: Aggregate, votes: Sequence[Vote], note: str | None = None) -> dict[str, Any]:
    return {
        "item_id": item_id,
        "answer": result.answer,
        "method": {**result.method, "_note": note} if note else result.method,
        "agreement": result.agreement,
        "submission_ids": sorted(v.submission_id for v in votes),
    }


def adjudicator_available(
    session: Session, item_ids: list[int], required_skills: Sequence[str], level: int | None = None
) -> set[int]:
    """Those of these items that some active adjudicator could take: the skills, the item's
    language, and no assignment of their own on it."""
    if not item_ids:
        return set()
    eligible = and_(
        Expert.tier == "adjudicator",
        Expert.status == "active",
        # Correlated two levels up (the item) as well as one (the expert).
        exists()
        .where(ExpertLanguage.expert_id == Expert.id, ExpertLanguage.language == Item.language)
        .correlate(Item, Expert),
        ~exists().where(Assignment.item_id == Item.id, Assignment.expert_id == Expert.id).correlate(Item, Expert),
    )
    if required_skills:
        eligible = and_(eligible, Expert.id.in_(holding_all(required_skills, level)))
    return set(
        session.scalars(select(Item.id).where(matches_any(session, Item.id, item_ids), exists().where(eligible)))
    )


def send_to_adjudication(session: Session, reasons: dict[int, str]) -> None:
    """These items wait for an adjudicator (decisions.claim_adjudication), each with why."""
    update_grouped(
        session, Item, reasons, lambda why: {"status": "adjudication", "status_reason": f"to adjudication: {why}"}
    )


# Rounds of adjudication before an item passes on its votes as they stand, saying so: never stuck.
MAX_ADJUDICATIONS = 3


def rejected_by_client(session: Session, item_ids: list[int]) -> set[int]:
    """Of these items, those whose delivered record the client rejected, not yet redelivered."""
    if not item_ids:
        return set()
    return set(
        session.scalars(
            select(RecordVerdict.item_id).where(
                matches_any(session, RecordVerdict.item_id, item_ids),
                RecordVerdict.verdict == "rejected",
                RecordVerdict.redelivered_version.is_(None),
            )
        )
    )


def settle_adjudications(session: Session, batch_id: int) -> int:
    """Items an adjudicator has answered: the answer joins the annotators' as one more vote, weighed
    by the adjudicator's quality like anyone's (adjudicators are checked on gold and agreement too);
    the item passes once its votes settle, else waits for another adjudicator (never one who worked
    on it), up to MAX_ADJUDICATIONS rounds; and items still waiting that no adjudicator can take any
    more pass on their votes. Returns how many passed."""
    decided = session.execute(
        select(Assignment.id, Assignment.item_id, Item.status_reason)
        .join(Submission, Submission.assignment_id == Assignment.id)
        .join(Item, Item.id == Assignment.item_id)
        .where(
            Item.batch_id == batch_id,
            Item.status == "adjudication",
            Assignment.role == "adjudicate",
            Assignment.status == "submitted",
        )
    ).all()
    project = batch_body(session, batch_id)
    # Waiting with no adjudication open, while the last adjudicator who could take them was paused
    # (or took another role) since they were sent: they pass on their votes, like those below.
    open_adjudication = exists().where(
        Assignment.item_id == Item.id,
        Assignment.role == "adjudicate",
        Assignment.status.in_(("assigned", "submitted")),
    )
    waiting = dict(
        session.execute(
            select(Item.id, Item.status_reason).where(
                Item.batch_id == batch_id, Item.status == "adjudication", ~open_adjudication
            )
        ).all()
    )
    available = adjudicator_available(session, list(waiting), project.required_skills, project.skill_level)
    # A record the client rejected is settled by adjudicators alone, and never passes unseen: it
    # waits for one (the review's report counts it as waiting) rather than pass on the same votes.
    rejected = rejected_by_client(session, [*waiting, *(item_id for _, item_id, _ in decided)])
    stranded = {
        item_id: why or "" for item_id, why in waiting.items() if item_id not in available and item_id not in rejected
    }
    if not decided and not stranded:
        return 0
    reasons = stranded | {item_id: why for _, item_id, why in decided}
    item_ids = sorted(reasons)
    votes = accepted_votes(session, item_ids)
    rulings = adjudication_votes(session, item_ids)
    everyone = {i: [*([] if i in rejected else votes.get(i, [])), *rulings.get(i, [])] for i in item_ids}
    aggregates = aggregate_items({i: vs for i, vs in everyone.items() if vs}, project)
    results: list[dict[str, Any]] = []
    undecided: dict[int, str] = {}
    unsettled = [i for i in item_ids if aggregates[i].unsettled and len(rulings.get(i, [])) < MAX_ADJUDICATIONS]
    # One more round only where an adjudicator who has not worked on the item is left to take it.
    takers = adjudicator_available(session, unsettled, project.required_skills, project.skill_level)
    for item_id, why in reasons.items():
        result = aggregates[item_id]
        rounds = len(rulings.get(item_id, []))
        if item_id in takers:
            undecided[item_id] = f"adjudicators disagree on {', '.join(result.unsettled)}: round {rounds + 1}"
            continue
        method = {
            **result.method,
            "_adjudicated": {
                "submission_ids": sorted(v.submission_id for v in rulings.get(item_id, [])),
                "rounds": rounds,
                "reason": why,
            },
        }
        if result.unsettled:
            left = "the rounds' limit" if rounds >= MAX_ADJUDICATIONS else "no adjudicator left to take it"
            method["_note"] = f"still unsettled after {rounds} adjudications ({left}): passed on its votes"
        results.append(
            {
                "item_id": item_id,
                "answer": result.answer,
                "method": method,
                "agreement": result.agreement,
                "submission_ids": sorted(v.submission_id for v in everyone[item_id]),
            }
        )
    insert_ignoring_conflicts(session, ItemResult, results, ["item_id"])
    update_ids(session, Item, [r["item_id"] for r in results], {"status": "passed", "status_reason": None})
    update_grouped(session, Item, undecided, lambda why: {"status_reason": f"to adjudication: {why}"})
    update_ids(session, Assignment, [aid for aid, _, _ in decided], {"status": "accepted"})
    return len(results)


def adjudication_votes(session: Session, item_ids: list[int]) -> dict[int, list[Vote]]:
    """Per item, its adjudicators' answers (this round's and settled ones) as votes."""
    votes: dict[int, list[Vote]] = defaultdict(list)
    for item_id, sid, expert_id, reliability, answer in session.execute(
        select(Assignment.item_id, Submission.id, Assignment.expert_id, Expert.reliability, Submission.answer)
        .join(Submission, Submission.assignment_id == Assignment.id)
        .join(Expert, Expert.id == Assignment.expert_id)
        .where(
            matches_any(session, Assignment.item_id, item_ids),
            Assignment.role == "adjudicate",
            Assignment.status.in_(("submitted", "accepted")),
        )
    ):
        votes[item_id].append(Vote(sid, expert_id, reliability, answer, approved=True))
    return votes


@without_collection
def accepted_votes(
    session: Session, item_ids: list[int], known: KnownAnswers | None = None, fields: Sequence[str] | None = None
) -> dict[int, list[Vote]]:
    """Per item, its accepted annotations with their expert's reliability now.

    A reviewer's correction stands in for the annotation it corrects; approved or corrected
    annotations are marked approved (free text prefers them). known: answers already read (the
    review's one read); only the others are read here. fields: without known answers, only these
    fields of each answer are read, taken out by the database."""
    votes: dict[int, list[Vote]] = defaultdict(list)
    if not item_ids:
        return votes
    approved = (
        select(Review.submission_id, func.max(Review.id).label("review_id"))
        .where(Review.decision.in_(("approve", "correct")))
        .group_by(Review.submission_id)
        .subquery()
    )
    named = None if known is not None or fields is None else list(fields)
    if known is not None:
        # Answers already in hand are not sent and decoded again.
        answer_columns: list[Any] = [null()]
    elif named is not None:
        answer_columns = [Submission.answer[name] for name in named]
    else:
        answer_columns = [Submission.answer]
    rows = plain_rows(
        session,
        select(
            Assignment.item_id,
            Submission.id,
            Assignment.expert_id,
            Expert.reliability,
            approved.c.review_id,
            # Corrections are few: read whole.
            Review.corrected_answer,
            *answer_columns,
        )
        .join(Submission, Submission.assignment_id == Assignment.id)
        .join(Expert, Expert.id == Assignment.expert_id)
        .outerjoin(approved, approved.c.submission_id == Submission.id)
        .outerjoin(Review, Review.id == approved.c.review_id)
        .where(
            matches_any(session, Assignment.item_id, item_ids),
            Assignment.role == "annotate",
            Assignment.status == "accepted",
        ),
    ).all()
    answers = None if known is None else answers_of(session, (row[1] for row in rows), known)
    for item_id, sid, expert_id, reliability, review_id, corrected, *values in rows:
        if corrected is not None:
            answer = corrected
        elif answers is not None:
            answer = answers[sid]
        elif named is not None:
            answer = dict(zip(named, values, strict=True))
        else:
            answer = values[0]
        votes[item_id].append(Vote(sid, expert_id, reliability, answer, review_id is not None))
    return votes


@without_collection
def reaggregate_batch(session: Session, batch_id: int, actor: str) -> int:
    """Aggregate a finished batch's items again (reliabilities move as gold evidence grows).

    Returns how many final answers changed. A delivered or failed batch with changes goes back to
    'passed', so the next delivery run sends a new version saying what changed. Adjudicated items
    keep their adjudicator's decision: it is final.
    """
    # Locked: a purge, a client's rejection or a delivery moving the batch meanwhile is seen, not overwritten.
    batch = session.get_one(Batch, batch_id, with_for_update=True, populate_existing=True)
    if batch.purged_at is not None:
        raise NightshiftError(f"batch {batch_id}'s content was purged under its client's retention")
    if batch.status == "delivering":
        raise NightshiftError(f"batch {batch_id} is being delivered: re-aggregate it once that has settled")
    project = batch_body(session, batch_id)
    results = {
        r.item_id: r
        for r in session.scalars(
            select(ItemResult)
            .join(Item, Item.id == ItemResult.item_id)
            .where(
                Item.batch_id == batch_id,
                Item.status.in_(("passed", "delivered")),
                # Gold answers are known, not aggregated for a client.
                Item.is_gold.is_(False),
            )
        )
        if r.method.get("_adjudicated") is None
    }
    votes = accepted_votes(session, list(results))
    aggregates = aggregate_items({i: vs for i, vs in votes.items() if vs}, project)
    changed = 0
    for item_id, fresh in aggregates.items():
        result = results[item_id]
        if (fresh.answer, fresh.method, fresh.agreement) != (result.answer, result.method, result.agreement):
            result.answer, result.method, result.agreement = fresh.answer, fresh.method, fresh.agreement
            result.submission_ids = sorted(v.submission_id for v in votes[item_id])
            changed += 1
    if changed and batch.status in ("delivered", "failed"):
        reason = f"re-aggregated: {changed} final answers changed"
        record_transition(session, "batch", batch_id, batch.status, "passed", actor, {"reason": reason})
        batch.status = "passed"
    return changed


def settle_batch(session: Session, batch_id: int) -> str:
    """Move the batch on when nothing of it is left to do; returns its status."""
    batch = session.get_one(Batch, batch_id)
    open_items = session.scalar(
        select(func.count())
        .select_from(Item)
        .where(
            Item.batch_id == batch_id,
            # An item nobody could take yet holds its batch too: a batch never passes with one missing.
            Item.status.in_(("pending", "assigned", "rework", "adjudication", "unassignable")),
        )
    )
    target = "in_review" if open_items else "passed"
    # A passed batch not yet sent goes back to review when the gold gate reopened some of its items.
    if batch.status in ("ingested", "dispatched", "in_review", "passed") and batch.status != target:
        record_transition(session, "batch", batch_id, batch.status, target, "review")
        batch.status = target
    return batch.status
