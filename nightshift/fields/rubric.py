"""Rubric grading: every criterion scored on its own scale; the weighted total is computed."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from nightshift.fields.alpha import alpha
from nightshift.fields.base import Answers, Ballot, ColumnCheck, FieldResult, FieldType
from nightshift.fields.ordinal_scale import weighted_median
from nightshift.projects.spec import Rubric


def weighted_total(label: Rubric, scores: Mapping[str, Any]) -> float | None:
    """The scores as one number from 0 (every criterion at its minimum) to 1 (every one at its
    maximum), each criterion counting by its weight; None unless every criterion is scored."""
    if not isinstance(scores, Mapping) or any(not isinstance(scores.get(c.name), int | float) for c in label.criteria):
        return None
    weights = sum(c.weight for c in label.criteria)
    total = sum(c.weight * (float(scores[c.name]) - c.min) / (c.max - c.min) for c in label.criteria)
    return round(total / weights, 6)


class RubricField(FieldType[Rubric]):
    """Aggregated criterion by criterion, by the median weighing each expert's quality; the weighted
    total is kept beside. Ordinal alpha over (item, criterion) scores; agrees when every criterion
    is within one step."""

    label_class = Rubric
    type_name = "rubric"
    control = "rubric"
    comparison_order = 1
    # Whole score sets rarely match exactly; the per-criterion spread tells disagreement.
    in_item_agreement = False

    def answer_error(self, label: Rubric, value: Any) -> str | None:
        if not isinstance(value, dict):
            return f"must score every criterion: {', '.join(c.name for c in label.criteria)}"
        unknown = sorted(set(value) - {c.name for c in label.criteria})
        if unknown:
            return f"has no criterion {str(unknown[0])[:40]!r}"
        for c in label.criteria:
            score = value.get(c.name)
            if score is None:
                return f"criterion {c.name} is not scored"
            if not isinstance(score, int) or isinstance(score, bool) or not c.min <= score <= c.max:
                return f"criterion {c.name} must be a whole number from {c.min} to {c.max}"
        return None

    def from_form(self, values: Sequence[object]) -> Any:
        # One select per criterion, each sending "criterion=score" (or nothing chosen).
        scores: dict[str, Any] = {}
        for raw in values:
            name, _, score = str(raw).partition("=")
            digits = score.strip().removeprefix("-")
            if digits:
                scores[name] = int(score) if digits.isdigit() and len(digits) <= 6 else score
        return scores or None

    def aggregate(
        self, label: Rubric, present: list[Any], ranked: Sequence[Ballot], item_id: int, fitted: Any
    ) -> FieldResult:
        scored = [v for v in ranked if isinstance(v.answer.get(label.name), dict)]
        value: dict[str, int] = {}
        for c in label.criteria:
            median = weighted_median(
                [(int(v.answer[label.name][c.name]), v.reliability) for v in scored if c.name in v.answer[label.name]]
            )
            if median is not None:
                value[c.name] = int(median + 0.5)
        method = {"method": "median_per_criterion", "total": weighted_total(label, value), "n": len(scored)}
        if len(value) != len(label.criteria):
            return FieldResult(None, method)
        share = sum(1 for v in scored if self.matches(v.answer[label.name], value)) / len(scored)
        return FieldResult(value, method, share)

    def alpha(self, label: Rubric, answers: Answers) -> float | None:
        low, high = min(c.min for c in label.criteria), max(c.max for c in label.criteria)
        units = [
            [a.get(label.name, {}).get(c.name) if isinstance(a.get(label.name), dict) else None for a in item]
            for item in answers.values()
            for c in label.criteria
        ]
        return alpha(units, list(range(low, high + 1)), "ordinal")

    def matches(self, got: Any, reference: Any) -> bool:
        if not isinstance(got, dict) or not isinstance(reference, dict):
            return False
        return all(isinstance(got.get(k), int | float) and abs(got[k] - v) <= 1 for k, v in reference.items())

    def gold_credit(self, label: Rubric, got: Any, reference: Any) -> float:
        if not isinstance(got, dict):
            return 0.0
        credits = [
            max(0.0, 1.0 - abs(float(got[c.name]) - float(reference[c.name])) / (c.max - c.min))
            if isinstance(got.get(c.name), int | float)
            else 0.0
            for c in label.criteria
        ]
        return sum(credits) / len(credits)

    def true_value(self, label: Rubric, rng: random.Random) -> Any:
        return {c.name: rng.randint(c.min, c.max) for c in label.criteria}

    def simulated_value(self, label: Rubric, rng: random.Random, truth: Any, correct: bool) -> Any:
        return dict(truth) if correct else {c.name: rng.randint(c.min, c.max) for c in label.criteria}

    def scaled(self, label: Rubric, value: Any) -> float | None:
        return weighted_total(label, value) if isinstance(value, dict) else None

    def gate_values(self, label: Rubric, values: Sequence[Any]) -> list[Any]:
        # How many criteria hold a score on their scale: a complete rubric holds all of them.
        return [
            None
            if v is None
            else sum(
                1
                for c in label.criteria
                if isinstance(v, dict) and isinstance(v.get(c.name), int) and c.min <= v[c.name] <= c.max
            )
            for v in values
        ]

    def gate_checks(self, label: Rubric) -> list[ColumnCheck]:
        n = len(label.criteria)
        return [
            ColumnCheck(
                "ExpectColumnValuesToBeBetween",
                label.name,
                f"{label.name} does not score every criterion on its scale",
                {"min_value": n, "max_value": n},
            )
        ]
