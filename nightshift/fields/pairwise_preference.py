"""Pairwise preference: A, B or a tie (the options)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

from nightshift.fields.alpha import alpha
from nightshift.fields.base import Answers, Ballot, ColumnCheck, FieldResult, FieldType
from nightshift.projects.spec import PairwisePreference


class PairwisePreferenceField(FieldType[PairwisePreference]):
    """Aggregated by the majority, a tie when A and B draw; nominal alpha; agrees when equal."""

    label_class = PairwisePreference
    type_name = "pairwise_preference"
    control = "one_option"

    def answer_error(self, label: PairwisePreference, value: Any) -> str | None:
        return None if value in label.options else f"must be one of {label.options}"

    def aggregate(
        self, label: PairwisePreference, present: list[Any], ranked: Sequence[Ballot], item_id: int, fitted: Any
    ) -> FieldResult:
        counts = Counter(present)
        value, share = preference(counts, label.options)
        method = {"method": "majority_with_ties", "votes": dict(counts), "n": len(present)}
        return FieldResult(value, method, share if present else None)

    def alpha(self, label: PairwisePreference, answers: Answers) -> float | None:
        units = [[a.get(label.name) for a in item] for item in answers.values()]
        return alpha(units, list(label.options), "nominal")

    def alternatives(self, label: PairwisePreference) -> int | None:
        return len(label.options)

    def true_value(self, label: PairwisePreference, rng: random.Random) -> Any:
        return rng.choice(label.options)

    def simulated_value(self, label: PairwisePreference, rng: random.Random, truth: Any, correct: bool) -> Any:
        return truth if correct else rng.choice(label.options)

    def gate_checks(self, label: PairwisePreference) -> list[ColumnCheck]:
        return [
            ColumnCheck(
                "ExpectColumnValuesToBeInSet",
                label.name,
                f"{label.name} not one of the options",
                {"value_set": list(label.options)},
            )
        ]


def preference(counts: Counter[str], options: Sequence[str]) -> tuple[str | None, float]:
    """The preferred side and the share of votes that agree with it. A and B drawing is a tie."""
    total = sum(counts.values())
    if not total:
        return None, 0.0
    top = max(counts.values())
    leaders = [o for o in options if counts.get(o, 0) == top]
    if len(leaders) == 1:
        return leaders[0], top / total
    # A draw is a tie: nobody's preference wins; only the experts who said "tie" agree with it.
    if "tie" in options:
        return "tie", counts.get("tie", 0) / total
    return None, 0.0
