"""The gold check: each expert's accuracy on items whose answer is known, and what follows a miss.

An expert below the project's gold accuracy has their work in the batch sent back for other
experts and is paused, so dispatch gives them nothing more until ops look at them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.orm import Session

from nightshift.platform.audit import record_transitions
from nightshift.platform.heap import without_collection
from nightshift.platform.models import Assignment, Expert, GoldAnswer, Item, ItemResult, Submission
from nightshift.platform.sql import matches_any, plain_rows, refresh_statistics, update_ids
from nightshift.projects.registry import project_body
from nightshift.projects.spec import ProjectBody
from nightshift.review.gates import GateOutcome
from nightshift.review.reliability import matcher


@dataclass(frozen=True)
class GoldScore:
    expert_id: int
    seen: int
    correct: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.seen if self.seen else 1.0


@without_collection
def gold_scores(
    session: Session,
    batch_id: int,
    gating: GateOutcome | None = None,
    rows: Sequence[Mapping[str, Any]] = (),
) -> list[GoldScore]:
    """The gold record in this batch's project of every expert with gated work in the batch.

    gating: a submissions gate's outcome not yet written, with the rows it checked
    (review.submissions_to_gate). Its annotations count as gated (the passing ones as accepted),
    so gold can be judged before the verdicts are written, and an annotation whose expert fails
    gold is written once, rejected, rather than accepted and then rejected."""
    project_id = session.scalar(select(Item.project_id).where(Item.batch_id == batch_id).limit(1))
    if project_id is None:
        return []
    project = project_body(session, project_id)
    judged = set(
        session.scalars(
            select(Assignment.expert_id)
            .distinct()
            .join(Item, Item.id == Assignment.item_id)
            .where(Item.batch_id == batch_id, Assignment.role == "annotate", Assignment.status == "accepted")
        )
    )
    # This gate's annotations are judged from the rows it read (not any that arrived since), so
    # their answers are not read again: gold answers of the batch's gold items are few.
    now: list[Mapping[str, Any]] = []
    if gating is not None and gating.evaluated_ids:
        if not rows:
            # Without them the gate's annotations would silently count for nothing.
            raise ValueError("gold_scores: a gate's outcome needs the rows it checked")
        evaluated = set(gating.evaluated_ids)
        now = [row for row in rows if row["submission_id"] in evaluated]
        judged.update(row["expert_id"] for row in now if row["submission_id"] not in gating.failures)
    if not judged:
        return []
    record = gold_record(
        session,
        project_id,
        project,
        Assignment.role == "annotate",
        # Rejected gold answers count too: a careless answer the schema gate caught is still wrong.
        Assignment.status.in_(("accepted", "rejected")),
        matches_any(session, Assignment.expert_id, sorted(judged)),
    )
    if now:
        references: dict[int, dict[str, Any]] = dict(
            plain_rows(
                session,
                select(GoldAnswer.item_id, GoldAnswer.answer)
                .join(Item, Item.id == GoldAnswer.item_id)
                .where(Item.batch_id == batch_id),
            )
            .tuples()
            .all()
        )
        matches = matcher(project)
        for row in now:
            reference = references.get(row["item_id"])
            if reference is not None and row["expert_id"] in judged:
                n, right = record.get(row["expert_id"], (0, 0))
                record[row["expert_id"]] = (n + 1, right + matches(row["answer"], reference))
    return [GoldScore(expert_id, n, right) for expert_id, (n, right) in sorted(record.items())]


@without_collection
def gold_record(
    session: Session, project_id: int, project: ProjectBody, *where: ColumnElement[bool]
) -> dict[int, tuple[int, int]]:
    """(gold answers, correct ones) per expert on the project's gold items, over the assignments
    `where` selects: the gate's and the gold-accuracy bonus's one measure."""
    seen: dict[int, list[int]] = {}
    matches = matcher(project)
    for expert_id, answer, gold in plain_rows(
        session,
        select(Assignment.expert_id, Submission.answer, GoldAnswer.answer)
        .join(Submission, Submission.assignment_id == Assignment.id)
        .join(GoldAnswer, GoldAnswer.item_id == Assignment.item_id)
        .join(Item, Item.id == Assignment.item_id)
        .where(Item.project_id == project_id, *where),
    ).tuples():
        record = seen.setdefault(expert_id, [0, 0])
        record[0] += 1
        record[1] += matches(answer, gold)
    return {expert_id: (n, right) for expert_id, (n, right) in seen.items()}


def pause_and_requeue(session: Session, batch_id: int, expert_ids: list[int], reason: str, actor: str) -> int:
    """Pause these experts and send their annotations in the batch back; returns how many went back.

    Items they touched that had passed but not yet gone out lose their result and are staffed again;
    delivered items stay delivered (a redelivery after re-aggregation corrects them)."""
    if not expert_ids:
        return 0
    active = session.scalars(
        select(Expert.id).where(matches_any(session, Expert.id, expert_ids), Expert.status == "active")
    ).all()
    record_transitions(session, "expert", active, "active", "paused", actor, {"reason": reason})
    session.execute(update(Expert).where(Expert.id.in_(expert_ids), Expert.status == "active").values(status="paused"))
    in_batch = select(Item.id).where(Item.batch_id == batch_id, Item.status.in_(("assigned", "rework", "passed")))
    sent_back = session.execute(
        update(Assignment)
        .where(
            Assignment.expert_id.in_(expert_ids),
            Assignment.role == "annotate",
            Assignment.status.in_(("assigned", "submitted", "accepted")),
            Assignment.item_id.in_(in_batch),
        )
        .values(status="rejected", status_reason=reason)
        .returning(Assignment.item_id)
        .execution_options(synchronize_session=False)
    ).scalars()
    items = sorted(set(sent_back))
    for start in range(0, len(items), 50_000):
        session.execute(
            delete(ItemResult).where(matches_any(session, ItemResult.item_id, items[start : start + 50_000]))
        )
    update_ids(session, Item, items, {"status": "rework", "status_reason": "an annotator failed the gold check"})
    refresh_statistics(session, len(items), Assignment, Item)
    return len(items)
