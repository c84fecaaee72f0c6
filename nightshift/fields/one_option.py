"""What every field answered by one of a fixed list of options shares (single choice, pairwise
preference): validation, nominal alpha, the number of alternatives, simulation and the gate's check."""

from __future__ import annotations

import random
from typing import Any, TypeVar

from nightshift.fields.alpha import alpha
from nightshift.fields.base import Answers, ColumnCheck, FieldType
from nightshift.projects.spec import PairwisePreference, SingleChoice

OptionLabel = TypeVar("OptionLabel", SingleChoice, PairwisePreference)


class OneOptionField(FieldType[OptionLabel]):
    """A field whose answer is one of label.options; subclasses say how an item's votes aggregate."""

    control = "one_option"

    def answer_error(self, label: OptionLabel, value: Any) -> str | None:
        return None if value in label.options else f"must be one of {label.options}"

    def alpha(self, label: OptionLabel, answers: Answers) -> float | None:
        units = [[a.get(label.name) for a in item] for item in answers.values()]
        return alpha(units, list(label.options), "nominal")

    def alternatives(self, label: OptionLabel) -> int | None:
        return len(label.options)

    def true_value(self, label: OptionLabel, rng: random.Random) -> Any:
        return rng.choice(label.options)

    def simulated_value(self, label: OptionLabel, rng: random.Random, truth: Any, correct: bool) -> Any:
        return truth if correct else rng.choice(label.options)

    def gate_checks(self, label: OptionLabel) -> list[ColumnCheck]:
        return [
            ColumnCheck(
                "ExpectColumnValuesToBeInSet",
                label.name,
                f"{label.name} not one of the options",
                {"value_set": list(label.options)},
            )
        ]
