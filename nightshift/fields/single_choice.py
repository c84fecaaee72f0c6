"""Single choice: one of the options."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from nightshift.fields.alpha import alpha
from nightshift.fields.base import Answers, Ballot, ColumnCheck, FieldResult, FieldType
from nightshift.fields.dawid_skene import PRIOR_STRENGTH, DawidSkene, dawid_skene
from nightshift.projects.spec import SingleChoice


class SingleChoiceField(FieldType[SingleChoice]):
    """Aggregated by Dawid-Skene's most probable class over the batch (or the majority vote, as the
    spec says); nominal alpha; agrees when equal."""

    label_class = SingleChoice
    type_name = "single_choice"
    control = "one_option"

    def answer_error(self, label: SingleChoice, value: Any) -> str | None:
        return None if value in label.options else f"must be one of {label.options}"

    def fit(
        self, label: SingleChoice, votes: Mapping[int, Sequence[Ballot]], reliability: Mapping[int, float]
    ) -> DawidSkene | None:
        if label.aggregation != "dawid_skene":
            return None
        triples = [
            (item_id, v.expert_id, v.answer[label.name])
            for item_id, vs in votes.items()
            for v in vs
            if v.answer.get(label.name) is not None
        ]
        return dawid_skene(triples, label.options, reliability)

    def aggregate(
        self, label: SingleChoice, present: list[Any], ranked: Sequence[Ballot], item_id: int, fitted: Any
    ) -> FieldResult:
        counts = Counter(present)
        top = max(counts.values()) if counts else 0
        # Ties go to the choice of the most reliable expert among the tied.
        majority = next((v for v in present if counts[v] == top), None)
        model: DawidSkene | None = fitted
        posterior = model.posteriors.get(item_id) if model else None
        if model is not None and posterior is not None:
            best = int(posterior.argmax())
            value: Any = model.options[best]
            method: dict[str, Any] = {
                "method": "dawid_skene",
                "posterior": round(float(posterior[best]), 4),
                "majority": majority,
                "votes": dict(counts),
                "iterations": model.iterations,
                "prior_strength": PRIOR_STRENGTH,
                "n": len(present),
            }
        else:
            value = majority
            method = {"method": "majority_vote", "votes": dict(counts), "n": len(present)}
        return FieldResult(value, method, counts[value] / len(present) if present else None)

    def alpha(self, label: SingleChoice, answers: Answers) -> float | None:
        units = [[a.get(label.name) for a in item] for item in answers.values()]
        return alpha(units, list(label.options), "nominal")

    def alternatives(self, label: SingleChoice) -> int | None:
        return len(label.options)

    def true_value(self, label: SingleChoice, rng: random.Random) -> Any:
        return rng.choice(label.options)

    def simulated_value(self, label: SingleChoice, rng: random.Random, truth: Any, correct: bool) -> Any:
        return truth if correct else rng.choice(label.options)

    def gate_checks(self, label: SingleChoice) -> list[ColumnCheck]:
        return [
            ColumnCheck(
                "ExpectColumnValuesToBeInSet",
                label.name,
                f"{label.name} not one of the options",
                {"value_set": list(label.options)},
            )
        ]
