"""Aggregation: each item's accepted answers become one final answer per field, with the method kept.

By field type (nightshift.fields): an ordinal scale takes the median (mean and spread kept); a
single choice takes Dawid-Skene's most probable class (or the majority vote, as the spec says);
multi choice votes per tag; a pairwise preference takes the majority, a tie when A and B draw; free
text takes the reviewer-approved text of the most reliable annotator.

Dawid-Skene is fitted over every item of the call at once (a batch), not item by item: it learns
each expert's confusion matrix from all their answers. Its prior comes from each expert's
reliability, so an expert with little work in the batch is judged by their record.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nightshift.fields import FieldType, field_type
from nightshift.projects.spec import Label, ProjectBody
from nightshift.review.quality import candidate_posterior


@dataclass(frozen=True)
class Vote:
    """One accepted annotation of an item."""

    submission_id: int
    expert_id: int
    reliability: float
    answer: Mapping[str, Any]
    # A reviewer approved it (or corrected it: the answer is then the correction).
    approved: bool = False


@dataclass(frozen=True)
class Aggregate:
    answer: dict[str, Any]
    method: dict[str, Any]
    # Share of experts agreeing with the final answer, averaged over the fields that have one.
    agreement: float
    # Per compared field (free text never is): the share of experts agreeing with the final answer.
    # Below 1, the item's experts disagree on that field.
    fields: dict[str, float]
    # The compared fields not settled yet: no clear majority (a 1-1 split never is one), or, where the
    # field type has a fixed set of answers, too little confidence that the final one is right.
    unsettled: tuple[str, ...] = ()


def aggregate_items(votes: Mapping[int, Sequence[Vote]], project: ProjectBody) -> dict[int, Aggregate]:
    """Final answers for these items (item id → its accepted votes), each with what is unsettled."""
    reliability = {v.expert_id: v.reliability for vs in votes.values() for v in vs}
    kinds = [(label, field_type(label)) for label in project.labels]
    # What a field type learns over the whole batch first (Dawid-Skene's confusion matrices).
    fitted = {label.name: kind.fit(label, votes, reliability) for label, kind in kinds}
    confidence = project.gates.min_confidence
    return {item_id: _aggregate_item(item_id, vs, kinds, fitted, confidence) for item_id, vs in votes.items()}


def aggregate(votes: Sequence[Vote], project: ProjectBody) -> Aggregate:
    """One item on its own (Dawid-Skene then rests on the experts' reliability alone)."""
    return aggregate_items({0: votes}, project)[0]


def _aggregate_item(
    item_id: int,
    votes: Sequence[Vote],
    kinds: Sequence[tuple[Label, FieldType[Any]]],
    fitted: Mapping[str, Any],
    min_confidence: float = 0.0,
) -> Aggregate:
    # Run for every item of a batch, and again for those a pause touches: each field's answers
    # are gathered once, in one pass, for its aggregation and its settled-check alike.
    final: dict[str, Any] = {}
    method: dict[str, Any] = {}
    fields: dict[str, float] = {}
    compared: list[tuple[Label, FieldType[Any], list[Any], list[float]]] = []
    # Most reliable first: ties and free text go their way.
    ranked = sorted(votes, key=_rank)
    for label, kind in kinds:
        name = label.name
        present: list[Any] = []
        weights: list[float] = []
        for vote in ranked:
            value = vote.answer.get(name)
            if value is not None:
                present.append(value)
                weights.append(vote.reliability)
        result = kind.aggregate(label, present, ranked, item_id, fitted[name])
        final[name] = result.value
        method[name] = result.method
        if result.share is not None:
            fields[name] = result.share
            compared.append((label, kind, present, weights))
    # Multi choice's share only tells disagreement: it stays out of the item's mean.
    averaged = [fields[label.name] for label, kind, _, _ in compared if kind.in_item_agreement]
    agreement = round(statistics.fmean(averaged), 4) if averaged else 1.0
    unsettled = tuple(
        label.name
        for label, kind, present, weights in compared
        if not _settled(label, kind, present, weights, final[label.name], min_confidence)
    )
    return Aggregate(final, method, agreement, fields, unsettled)


def _rank(vote: Vote) -> tuple[float, int]:
    return -vote.reliability, vote.submission_id


def _settled(
    label: Label, kind: FieldType[Any], present: list[Any], weights: list[float], final: Any, min_confidence: float
) -> bool:
    """A clear majority for one answer (more votes behind it than behind any answer it does not
    match) and, where the field has a fixed set of answers, enough confidence in the final one.
    present: the field's answers, most reliable expert first; weights: their experts' reliability."""
    if not present:
        return True
    first = present[0]
    matches = kind.matches
    # Unanimous, the common case: every answer backs every other, so the n x n comparisons below
    # would find a clear majority; one comparison says the field matches its own answer.
    if not (all(value == first for value in present) and matches(first, first)):
        support = []
        for candidate in present:
            backing = 0
            for value in present:
                if matches(value, candidate):
                    backing += 1
            support.append(backing)
        top = max(support)
        leader = present[support.index(top)]
        if any(support[n] >= top for n, value in enumerate(present) if not matches(value, leader)):
            return False
    alternatives = kind.alternatives(label)
    if alternatives is None or min_confidence <= 0:
        return True
    _, _, shares = candidate_posterior(list(zip(present, weights, strict=True)), alternatives)
    return shares.get(final, 0.0) >= min_confidence
