"""Ordinal scale: a whole number from min to max."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np

from nightshift.fields.alpha import alpha
from nightshift.fields.base import Answers, Ballot, ColumnCheck, FieldResult, FieldType
from nightshift.fields.columns import Column, ColumnResults, clear_majorities
from nightshift.projects.spec import GradedPreference, OrdinalScale

# A label whose answer is a whole number from its min to its max.
S = TypeVar("S", bound=OrdinalScale | GradedPreference)


class ScaleField(FieldType[S]):
    """Aggregated by the median (mean and spread kept); ordinal alpha; agrees within one step."""

    comparison_order = 0

    def answer_error(self, label: S, value: Any) -> str | None:
        if not isinstance(value, int) or isinstance(value, bool) or not label.min <= value <= label.max:
            return f"must be a whole number from {label.min} to {label.max}"
        return None

    def from_form(self, values: Sequence[object]) -> Any:
        raw = super().from_form(values)
        if raw is None:
            return None
        # A number of thousands of digits stays text: the schema check refuses it in a line.
        digits = raw.strip().removeprefix("-")
        return int(raw) if digits.isascii() and digits.isdigit() and len(digits) <= 18 else raw

    def aggregate(
        self, label: S, present: list[Any], ranked: Sequence[Ballot], item_id: int, fitted: Any
    ) -> FieldResult:
        nums = sorted(int(v) for v in present)
        count, total = len(nums), sum(nums)
        median = weighted_median(
            [(int(v.answer[label.name]), v.reliability) for v in ranked if v.answer.get(label.name) is not None]
        )
        method = {
            # Each vote weighs its expert's quality; with equal qualities, the plain median.
            "method": "median",
            "mean": round(total / count, 3) if nums else None,
            # The population deviation from integer sums, exact up to the square root:
            # statistics.pstdev's fractions cost more than the rest of the item put together.
            "spread": round(math.sqrt(count * sum([n * n for n in nums]) - total * total) / count, 3)
            if count > 1
            else 0.0,
            "n": count,
        }
        if median is None:
            return FieldResult(None, method)
        share = len([n for n in nums if abs(n - median) <= 1]) / count
        return FieldResult(math.floor(median + 0.5), method, share)

    def alpha(self, label: S, answers: Answers) -> float | None:
        domain: list[Any] = list(range(label.min, label.max + 1))
        units = [[a.get(label.name) for a in item] for item in answers.values()]
        return alpha(units, domain, "ordinal")

    def matches(self, got: Any, reference: Any) -> bool:
        return isinstance(got, int | float) and abs(got - reference) <= 1

    def gold_credit(self, label: S, got: Any, reference: Any) -> float:
        # By distance: one step off on a 1-7 scale keeps most of the credit, the far end none.
        if not isinstance(got, int | float) or isinstance(got, bool):
            return 0.0
        return max(0.0, 1.0 - abs(float(got) - float(reference)) / (label.max - label.min))

    def true_value(self, label: S, rng: random.Random) -> Any:
        return rng.randint(label.min, label.max)

    def simulated_value(self, label: S, rng: random.Random, truth: Any, correct: bool) -> Any:
        return truth if correct else rng.randint(label.min, label.max)

    def scaled(self, label: S, value: Any) -> float | None:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None
        return round((float(value) - label.min) / (label.max - label.min), 6)

    def gate_checks(self, label: S) -> list[ColumnCheck]:
        return [
            ColumnCheck(
                "ExpectColumnValuesToBeBetween",
                label.name,
                f"{label.name} outside {label.min}..{label.max}",
                {"min_value": label.min, "max_value": label.max},
            )
        ]


class OrdinalScaleField(ScaleField[OrdinalScale]):
    label_class = OrdinalScale
    type_name = "ordinal_scale"
    control = "ordinal_scale"

    def aggregate_column(self, label: OrdinalScale, column: Column, fitted: Any) -> ColumnResults | None:
        if not all(type(v) is int and label.min <= v <= label.max for v in column.values):
            return None  # an answer that is not a whole number on the scale: item by item
        return median_column(column)


def median_column(column: Column) -> ColumnResults:
    """ScaleField.aggregate over a column of whole numbers."""
    items, owners = len(column.item_ids), column.owners
    numbers = np.fromiter(column.values, dtype=np.int64, count=len(column.values))
    sizes = column.counts
    floats = numbers.astype(np.float64)
    # Sums of whole numbers of a scale: exact in floating point, as Python's are.
    total = np.bincount(owners, weights=floats, minlength=items)
    squares = np.bincount(owners, weights=floats * floats, minlength=items)
    median = np.full(items, np.nan)
    for rows, positions in column.by_count():
        median[rows] = _weighted_medians(numbers[positions], column.weights[positions])
    near = np.bincount(owners, weights=np.abs(floats - median[owners]) <= 1, minlength=items)
    values: list[Any] = []
    methods: list[dict[str, Any]] = []
    shares: list[float | None] = []
    for count, added, squared, middle, within in zip(
        sizes.tolist(), total.tolist(), squares.tolist(), median.tolist(), near.tolist(), strict=True
    ):
        methods.append(
            {
                "method": "median",
                "mean": round(added / count, 3) if count else None,
                "spread": round(math.sqrt(count * squared - added * added) / count, 3) if count > 1 else 0.0,
                "n": count,
            }
        )
        if count:
            values.append(math.floor(middle + 0.5))
            shares.append(within / count)
        else:
            values.append(None)
            shares.append(None)
    clear = clear_majorities(column, numbers, lambda got, reference: np.abs(got - reference) <= 1)
    return ColumnResults(values, methods, shares, clear)


def _weighted_medians(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """weighted_median of each row (items x answers): the same order of sums, so the same floats."""
    order = np.lexsort((weights, values), axis=-1)
    values = np.take_along_axis(values, order, axis=-1)
    weights = np.maximum(np.take_along_axis(weights, order, axis=-1), 1e-6)
    # Accumulated left to right, one addition at a time, as the loop does.
    seen = np.cumsum(weights, axis=-1)
    half = seen[:, -1:] / 2
    tie = np.abs(seen - half) <= 1e-9 * half
    tie[:, -1] = False
    hit = tie | (seen > half)
    at = np.where(hit.any(axis=-1), np.argmax(hit, axis=-1), values.shape[1] - 1)
    rows = np.arange(len(values))
    following = values[rows, np.minimum(at + 1, values.shape[1] - 1)]
    medians: np.ndarray = np.where(
        tie[rows, at], (values[rows, at] + following) / 2, values[rows, at].astype(np.float64)
    )
    return medians


def weighted_median(votes: list[tuple[int, float]]) -> float | None:
    """The value where the votes' weight (each expert's quality) reaches half; where it reaches
    exactly half, the mean of that value and the next, as the plain median of an even count does."""
    if not votes:
        return None
    ordered = sorted(votes)
    half = sum(max(w, 1e-6) for _, w in ordered) / 2
    seen = 0.0
    for n, (value, weight) in enumerate(ordered):
        seen += max(weight, 1e-6)
        if abs(seen - half) <= 1e-9 * half and n + 1 < len(ordered):
            return (value + ordered[n + 1][0]) / 2
        if seen > half:
            return float(value)
    return float(ordered[-1][0])
