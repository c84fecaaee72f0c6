"""Aggregation: each item's accepted answers become one final answer per field, with the method kept.

By field type (nightshift.fields): an ordinal scale takes the median (mean and spread kept); a
single choice takes Dawid-Skene's most probable class (or the majority vote, as the spec says);
multi choice votes per tag; a pairwise preference takes the majority, a tie when A and B draw; free
text takes the reviewer-approved text of the most reliable annotator.

Dawid-Skene is fitted over every item of the call at once (a batch), not item by item: it learns
each expert's confusion matrix from all their answers. Its prior comes from each expert's
reliability, so an expert with little work in the batch is judged by their record.

A call's items are aggregated field by field: over arrays where the field type has
aggregate_column (nightshift.fields.columns), item by item where it has not. Either way each
compared field gets the same settled-check: a clear majority, then, for a field with a fixed set
of answers, enough confidence in the final one.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from nightshift.fields import FieldType, field_type
from nightshift.fields.columns import Column
from nightshift.projects.spec import Label, ProjectBody
from nightshift.review.quality import candidate_posterior, final_shares


class Vote(NamedTuple):
    """One accepted annotation of an item. A named tuple: a round builds one per accepted
    annotation (hundreds of thousands), and a frozen dataclass's init costs several times more."""

    submission_id: int
    expert_id: int
    reliability: float
    answer: Mapping[str, Any]
    # A reviewer approved it (or corrected it: the answer is then the correction).
    approved: bool = False


# Under this many items the arrays' fixed cost (a few dozen NumPy calls a field) exceeds the loop's:
# a single item took ten times as long over arrays, ten items about as long.
COLUMN_MIN_ITEMS = 16


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
    item_ids = list(votes)
    # Most reliable first: ties and free text go their way.
    ranked = [sorted(vs, key=_rank) for vs in votes.values()]
    # Field by field over the whole batch (a field type's arrays where it has them), then item by item.
    by_column = len(item_ids) >= COLUMN_MIN_ITEMS
    results = [
        field_results(label, kind, column_of(label.name, item_ids, ranked), fitted[label.name], confidence, by_column)
        for label, kind in kinds
    ]
    names = [label.name for label, _ in kinds]
    averaged_in = [kind.in_item_agreement for _, kind in kinds]
    found: dict[int, Aggregate] = {}
    for n, item_id in enumerate(item_ids):
        final: dict[str, Any] = {}
        method: dict[str, Any] = {}
        fields: dict[str, float] = {}
        averaged: list[float] = []
        unsettled: list[str] = []
        for name, averages, (values, methods, shares, settled) in zip(names, averaged_in, results, strict=True):
            final[name] = values[n]
            method[name] = methods[n]
            share = shares[n]
            if share is not None:
                fields[name] = share
                # Multi choice's share only tells disagreement: it stays out of the item's mean.
                if averages:
                    averaged.append(share)
                if not settled[n]:
                    unsettled.append(name)
        agreement = round(statistics.fmean(averaged), 4) if averaged else 1.0
        found[item_id] = Aggregate(final, method, agreement, fields, tuple(unsettled))
    return found


def aggregate(votes: Sequence[Vote], project: ProjectBody) -> Aggregate:
    """One item on its own (Dawid-Skene then rests on the experts' reliability alone)."""
    return aggregate_items({0: votes}, project)[0]


def column_of(name: str, item_ids: Sequence[int], ranked: Sequence[Sequence[Vote]]) -> Column:
    """One field's answers over these items (each item's votes most reliable first)."""
    values: list[Any] = []
    weights: list[float] = []
    approved: list[bool] = []
    starts = [0]
    for votes in ranked:
        for vote in votes:
            value = vote.answer.get(name)
            if value is not None:
                values.append(value)
                weights.append(vote.reliability)
                approved.append(vote.approved)
        starts.append(len(values))
    return Column(
        item_ids,
        ranked,
        values,
        np.asarray(starts, dtype=np.int64),
        np.asarray(weights, dtype=np.float64),
        np.asarray(approved, dtype=bool),
    )


FieldResults = tuple[list[Any], list[dict[str, Any]], list[float | None], Sequence[bool]]


def field_results(
    label: Label, kind: FieldType[Any], column: Column, fitted: Any, min_confidence: float, by_column: bool = True
) -> FieldResults:
    """One field's (values, methods, shares, settled) for every item of the column: over arrays
    where the field type can, else (or with by_column=False) item by item."""
    alternatives = kind.alternatives(label)
    batch = kind.aggregate_column(label, column, fitted) if by_column else None
    if batch is None:
        values: list[Any] = []
        methods: list[dict[str, Any]] = []
        shares: list[float | None] = []
        settled: list[bool] = []
        starts, weights = column.starts.tolist(), column.weights.tolist()
        for n, item_id in enumerate(column.item_ids):
            present = list(column.values[starts[n] : starts[n + 1]])
            result = kind.aggregate(label, present, column.ranked[n], item_id, fitted)
            values.append(result.value)
            methods.append(result.method)
            shares.append(result.share)
            settled.append(
                result.share is None
                or _settled(label, kind, present, weights[starts[n] : starts[n + 1]], result.value, min_confidence)
            )
        return values, methods, shares, settled
    clear = batch.clear
    if alternatives is not None and min_confidence > 0:
        if batch.codes is None or batch.final_codes is None:
            raise TypeError(f"{kind.type_name}.aggregate_column: a field with alternatives must give its codes")
        confident = final_shares(column.owners, batch.codes, column.weights, batch.final_codes, alternatives)
        # An item without answers is settled, as _settled says.
        clear = clear & ((confident >= min_confidence) | (column.counts == 0))
    return batch.values, batch.methods, batch.shares, clear.tolist()


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
