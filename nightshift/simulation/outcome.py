"""What a simulated batch cost and how right it came out: the simulator knows each item's truth.

For `nightshift simulate --until-done`: assignments and pay per delivered item, and accuracy of the
final answers against the truth the simulator drew (free text aside; a scale counts as right within
one step, as the field types compare).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightshift.fields import compared_labels, field_type
from nightshift.platform.models import Assignment, Batch, Expert, Item, ItemResult, Submission
from nightshift.projects.registry import project_spec
from nightshift.simulation.synthetic import true_answer


@dataclass(frozen=True)
class Outcome:
    delivered: int
    correct: int
    assignments: int
    pay: Decimal

    @property
    def accuracy(self) -> float:
        return self.correct / self.delivered if self.delivered else 0.0

    @property
    def assignments_per_item(self) -> float:
        return self.assignments / self.delivered if self.delivered else 0.0

    @property
    def pay_per_item(self) -> Decimal:
        return (self.pay / self.delivered).quantize(Decimal("0.01")) if self.delivered else Decimal(0)


def batch_outcome(session: Session, batch_id: int) -> Outcome:
    """The batch's passed or delivered items against their simulated truth, and every answered
    assignment's pay (worked time, capped as billing caps it, at the expert's rate and role)."""
    project = project_spec(session, session.get_one(Batch, batch_id).project_id).project
    compared = compared_labels(project.labels)
    delivered = correct = 0
    for content_hash, answer in session.execute(
        select(Item.content_hash, ItemResult.answer)
        .join(ItemResult, ItemResult.item_id == Item.id)
        .where(Item.batch_id == batch_id, Item.is_gold.is_(False), Item.status.in_(("passed", "delivered")))
    ):
        truth = true_answer(content_hash, project.labels)
        delivered += 1
        correct += all(field_type(label).matches(answer.get(label.name), truth[label.name]) for label in compared)
    cap = project.payouts.max_minutes_per_task * 60
    pay, assignments = Decimal(0), 0
    for role, seconds, rate in session.execute(
        select(Assignment.role, Assignment.worked_seconds, Expert.hourly_rate)
        .join(Submission, Submission.assignment_id == Assignment.id)
        .join(Item, Item.id == Assignment.item_id)
        .join(Expert, Expert.id == Assignment.expert_id)
        .where(Item.batch_id == batch_id)
    ):
        assignments += 1
        hours = Decimal(min(seconds or 0, cap)) / 3600
        pay += hours * Decimal(rate) * project.payouts.role_rates.of(role)
    return Outcome(delivered, correct, assignments, pay)
