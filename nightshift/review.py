"""Review: gate submissions, aggregate each item's answers, send back what fails."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from nightshift.audit import record_transition
from nightshift.errors import NightshiftError
from nightshift.models import Assignment, Batch, Expert, GateRun, Item, ItemResult, Review, Submission
from nightshift.projects import project_spec
from nightshift.spec import FreeText, MultiChoice, OrdinalScale, ProjectBody
from nightshift.sql import insert_ignoring_conflicts

# Said on an answer that passed at maximum overlap without reaching the agreement threshold.
LOW_AGREEMENT_NOTE = "maximum overlap reached with low agreement"


@dataclass
class GateOutcome:
    """What a gate found: the ids it looked at and, per failing id, why."""

    gate: str
    evaluated_ids: list[int]
    failures: dict[int, str]
    thresholds: dict[str, Any]
    expectations: list[dict[str, Any]]

    @property
    def success(self) -> bool:
        return not self.failures


@dataclass
class ReviewReport:
    gated: int = 0
    rejected: int = 0
    passed_items: int = 0
    rework_items: int = 0
    more_overlap_items: int = 0
    batch_status: str = ""
    failures: dict[int, str] = field(default_factory=dict)


def submissions_to_gate(session: Session, batch_id: int) -> list[dict[str, Any]]:
    """Submitted, not yet gated annotations of this batch, one dict each."""
    rows = session.execute(
        select(
            Submission.id,
            Assignment.item_id,
            Assignment.expert_id,
            Submission.time_on_task_seconds,
            Submission.answer,
        )
        .join(Assignment, Assignment.id == Submission.assignment_id)
        .join(Item, Item.id == Assignment.item_id)
        .where(Item.batch_id == batch_id, Assignment.status == "submitted", Assignment.role == "annotate")
        .order_by(Submission.id)
    ).all()
    return [
        {"submission_id": sid, "item_id": iid, "expert_id": eid, "time_on_task_seconds": secs, "answer": ans}
        for sid, iid, eid, secs, ans in rows
    ]


def record_gate(session: Session, batch_id: int, outcome: GateOutcome) -> int:
    run = GateRun(
        batch_id=batch_id,
        gate=outcome.gate,
        success=outcome.success,
        evaluated=len(outcome.evaluated_ids),
        failed=len(outcome.failures),
        thresholds=outcome.thresholds,
        results=outcome.expectations,
    )
    session.add(run)
    session.flush()
    return run.id


def apply_submission_gate(session: Session, outcome: GateOutcome) -> int:
    """Failing submissions are rejected (their items go back); the rest are accepted."""
    passing = [sid for sid in outcome.evaluated_ids if sid not in outcome.failures]
    by_reason: dict[str, list[int]] = defaultdict(list)
    for sid, why in outcome.failures.items():
        by_reason[why].append(sid)
    updates: list[tuple[list[int], str, str | None]] = [(passing, "accepted", None)]
    updates += [(ids, "rejected", why) for why, ids in by_reason.items()]
    for ids, status, reason in updates:
        if ids:
            session.execute(
                update(Assignment)
                .where(Assignment.id.in_(select(Submission.assignment_id).where(Submission.id.in_(ids))))
                .values(status=status, status_reason=reason)
            )
    return len(outcome.failures)


def aggregate_ready_items(session: Session, batch_id: int, report: ReviewReport) -> None:
    """Items whose annotations are all gated: aggregate, ask for more, or send back for rework."""
    batch = session.get_one(Batch, batch_id)
    project = project_spec(session, batch.project_id).project
    pending = select(Assignment.item_id).where(
        Assignment.role == "annotate", Assignment.status.in_(("assigned", "submitted"))
    )
    items = dict(
        session.execute(
            select(Item.id, Item.overlap_target).where(
                Item.batch_id == batch_id, Item.status == "assigned", Item.id.not_in(pending)
            )
        )
        .tuples()
        .all()
    )
    if not items:
        return
    answers = _accepted_answers(session, list(items))
    results: list[dict[str, Any]] = []
    rework: list[int] = []
    more: list[tuple[int, int]] = []
    for item_id, target in items.items():
        need = target or project.overlap.min
        got = answers.get(item_id, [])
        if len(got) < need:
            rework.append(item_id)
            continue
        answer, method, agreement = aggregate(got, project)
        if agreement < project.gates.min_agreement and need < project.overlap.max:
            more.append((item_id, need + 1))
            continue
        if agreement < project.gates.min_agreement:
            method["_note"] = LOW_AGREEMENT_NOTE
        results.append(
            {
                "item_id": item_id,
                "answer": answer,
                "method": method,
                "agreement": agreement,
                "submission_ids": sorted(sid for sid, _, _ in got),
            }
        )
    insert_ignoring_conflicts(session, ItemResult, results, ["item_id"])
    if results:
        session.execute(update(Item).where(Item.id.in_([r["item_id"] for r in results])).values(status="passed"))
    if rework:
        session.execute(
            update(Item)
            .where(Item.id.in_(rework))
            .values(status="rework", status_reason="annotations rejected by the submissions gate")
        )
    for item_id, new_target in more:
        session.execute(
            update(Item)
            .where(Item.id == item_id)
            .values(
                status="rework",
                overlap_target=new_target,
                status_reason="annotators disagree: one more expert",
            )
        )
    report.passed_items += len(results)
    report.rework_items += len(rework)
    report.more_overlap_items += len(more)


def _accepted_answers(session: Session, item_ids: list[int]) -> dict[int, list[tuple[int, float, dict[str, Any]]]]:
    """Per item, its accepted annotations as (submission id, the expert's reliability now, answer).

    A reviewer's correction stands in for the annotation it corrects."""
    answers: dict[int, list[tuple[int, float, dict[str, Any]]]] = defaultdict(list)
    for item_id, sid, reliability, answer, corrected in session.execute(
        select(Assignment.item_id, Submission.id, Expert.reliability, Submission.answer, Review.corrected_answer)
        .join(Submission, Submission.assignment_id == Assignment.id)
        .join(Expert, Expert.id == Assignment.expert_id)
        .outerjoin(Review, (Review.submission_id == Submission.id) & (Review.decision == "correct"))
        .where(
            Assignment.item_id.in_(item_ids),
            Assignment.role == "annotate",
            Assignment.status == "accepted",
        )
    ):
        answers[item_id].append((sid, reliability, corrected if corrected is not None else answer))
    return answers


def reaggregate_batch(session: Session, batch_id: int, actor: str) -> int:
    """Aggregate a finished batch's items again (reliabilities move as gold evidence grows).

    Returns how many final answers changed. A delivered or failed batch with changes goes back to
    'passed', so the next delivery run sends a new version saying what changed.
    """
    batch = session.get_one(Batch, batch_id)
    if batch.status == "delivering":
        raise NightshiftError(f"batch {batch_id} is being delivered: re-aggregate it once that has settled")
    project = project_spec(session, batch.project_id).project
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
    }
    answers = _accepted_answers(session, list(results))
    changed = 0
    for item_id, result in results.items():
        if not answers.get(item_id):
            continue
        answer, method, agreement = aggregate(answers[item_id], project)
        if agreement < project.gates.min_agreement:
            # It passed before, so it had reached its maximum overlap: the same note as then.
            method["_note"] = LOW_AGREEMENT_NOTE
        if (answer, method, agreement) != (result.answer, result.method, result.agreement):
            result.answer, result.method, result.agreement = answer, method, agreement
            result.submission_ids = sorted(sid for sid, _, _ in answers[item_id])
            changed += 1
    if changed and batch.status in ("delivered", "failed"):
        reason = f"re-aggregated: {changed} final answers changed"
        record_transition(session, "batch", batch_id, batch.status, "passed", actor, {"reason": reason})
        batch.status = "passed"
    return changed


def aggregate(
    answers: list[tuple[int, float, dict[str, Any]]], project: ProjectBody
) -> tuple[dict[str, Any], dict[str, Any], float]:
    """(final answer, method per field, agreement) from (submission id, reliability, answer) triples."""
    final: dict[str, Any] = {}
    method: dict[str, Any] = {}
    agreements: list[float] = []
    by_reliability = sorted(answers, key=lambda a: (-a[1], a[0]))
    for label in project.labels:
        values = [a[2].get(label.name) for a in by_reliability]
        present = [v for v in values if v is not None]
        if isinstance(label, OrdinalScale):
            nums = [int(v) for v in present]
            median = statistics.median(nums)
            final[label.name] = int(median + 0.5) if nums else None
            spread = statistics.pstdev(nums) if len(nums) > 1 else 0.0
            method[label.name] = {
                "method": "median",
                "mean": round(statistics.fmean(nums), 3) if nums else None,
                "spread": round(spread, 3),
                "n": len(nums),
            }
            if nums:
                agreements.append(sum(abs(n - median) <= 1 for n in nums) / len(nums))
        elif isinstance(label, MultiChoice):
            counts = Counter(tag for v in present for tag in v)
            final[label.name] = sorted(t for t, c in counts.items() if c * 2 > len(present))
            method[label.name] = {"method": "per_tag_majority", "votes": dict(counts), "n": len(present)}
        elif isinstance(label, FreeText):
            # The most reliable annotator's text; reviewer-approved best comes with human review.
            final[label.name] = present[0] if present else None
            method[label.name] = {"method": "most_reliable_annotator", "n": len(present)}
        else:
            counts = Counter(present)
            top = max(counts.values()) if counts else 0
            # Ties go to the choice of the most reliable expert among the tied.
            winner = next((v for v in present if counts[v] == top), None)
            final[label.name] = winner
            method[label.name] = {"method": "majority_vote", "votes": dict(counts), "n": len(present)}
            if present:
                agreements.append(top / len(present))
    agreement = round(statistics.fmean(agreements), 4) if agreements else 1.0
    return final, method, agreement


def settle_batch(session: Session, batch_id: int) -> str:
    """Move the batch on when nothing of it is left to do; returns its status."""
    batch = session.get_one(Batch, batch_id)
    open_items = session.scalar(
        select(func.count())
        .select_from(Item)
        .where(Item.batch_id == batch_id, Item.status.in_(("pending", "assigned", "rework")))
    )
    target = "in_review" if open_items else "passed"
    if batch.status in ("ingested", "dispatched", "in_review") and batch.status != target:
        record_transition(session, "batch", batch_id, batch.status, target, "review")
        batch.status = target
    return batch.status
