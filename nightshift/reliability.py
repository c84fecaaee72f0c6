"""Expert reliability: a smoothed estimate from gold accuracy, agreement and missed deadlines.

A Beta-style average: the prior counts as PRIOR_WEIGHT observations, so a new expert starts at the
prior, not at 0 or 1, and a few answers move it only a little. Gold answers weigh more than
agreement with the aggregate (the truth is known); a missed deadline counts as a wrong answer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightshift.heap import without_collection
from nightshift.models import Assignment, Expert, GoldAnswer, Item, ItemResult, Submission
from nightshift.projects import project_spec
from nightshift.routing import refresh_routes
from nightshift.spec import FreeText, MultiChoice, OrdinalScale, ProjectBody
from nightshift.sql import matches_any, plain_rows, update_grouped

PRIOR = 0.7
PRIOR_WEIGHT = 10.0
GOLD_WEIGHT = 2.0
AGREEMENT_WEIGHT = 1.0
MISS_WEIGHT = 1.0


@dataclass
class Evidence:
    gold_seen: int = 0
    gold_correct: int = 0
    agreement_seen: int = 0
    agreed: int = 0
    missed: int = 0

    def estimate(self) -> float:
        right = GOLD_WEIGHT * self.gold_correct + AGREEMENT_WEIGHT * self.agreed
        seen = GOLD_WEIGHT * self.gold_seen + AGREEMENT_WEIGHT * self.agreement_seen + MISS_WEIGHT * self.missed
        return (PRIOR_WEIGHT * PRIOR + right) / (PRIOR_WEIGHT + seen)

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_seen if self.gold_seen else None


def matches(answer: dict[str, Any], reference: dict[str, Any], project: ProjectBody) -> bool:
    """Whether an answer agrees with a reference on every label the reference has (free text aside):
    a scale within one step, a choice equal, tags overlapping at least half (Jaccard)."""
    compared = False
    for label in project.labels:
        if isinstance(label, FreeText) or label.name not in reference:
            continue
        want, got = reference[label.name], answer.get(label.name)
        compared = True
        if isinstance(label, OrdinalScale):
            if not isinstance(got, int | float) or abs(got - want) > 1:
                return False
        elif isinstance(label, MultiChoice):
            a, b = set(got or []), set(want or [])
            if (a or b) and len(a & b) / len(a | b) < 0.5:
                return False
        elif got != want:
            return False
    return compared


@without_collection
def gather_evidence(session: Session, expert_ids: Sequence[int]) -> dict[int, Evidence]:
    """Every expert's gold and agreement record across all their gated annotations."""
    evidence: dict[int, Evidence] = defaultdict(Evidence)
    if not expert_ids:
        return evidence
    ids = list(expert_ids)
    projects: dict[int, ProjectBody] = {}
    rows = plain_rows(
        session,
        select(Assignment.expert_id, Item.project_id, Submission.answer, GoldAnswer.answer, ItemResult.answer)
        .join(Submission, Submission.assignment_id == Assignment.id)
        .join(Item, Item.id == Assignment.item_id)
        .outerjoin(GoldAnswer, GoldAnswer.item_id == Item.id)
        .outerjoin(ItemResult, ItemResult.item_id == Item.id)
        .where(
            matches_any(session, Assignment.expert_id, ids),
            Assignment.role == "annotate",
            Assignment.status.in_(("accepted", "rejected")),
        ),
    ).tuples()
    for expert_id, project_id, answer, gold, final in rows:
        if project_id not in projects:
            projects[project_id] = project_spec(session, project_id).project
        record = evidence[expert_id]
        if gold is not None:
            record.gold_seen += 1
            record.gold_correct += matches(answer, gold, projects[project_id])
        elif final is not None:
            record.agreement_seen += 1
            record.agreed += matches(answer, final, projects[project_id])
    for expert_id, missed in session.execute(
        select(Expert.id, Expert.missed_count).where(matches_any(session, Expert.id, ids))
    ).tuples():
        evidence[expert_id].missed = missed
    return evidence


def update_reliability(session: Session, expert_ids: Sequence[int]) -> dict[int, float]:
    """Recompute these experts' reliability and refresh their routes, so dispatch uses it next."""
    evidence = gather_evidence(session, expert_ids)
    values = {expert_id: round(record.estimate(), 4) for expert_id, record in evidence.items()}
    update_grouped(session, Expert, values, lambda value: {"reliability": value})
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
