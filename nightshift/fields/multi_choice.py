"""Multi choice: a list of distinct options (tags)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

from nightshift.fields.alpha import tag_alpha
from nightshift.fields.base import Answers, Ballot, ColumnCheck, FieldResult, FieldType
from nightshift.projects.spec import MultiChoice


class MultiChoiceField(FieldType[MultiChoice]):
    """Aggregated by a majority per tag; nominal alpha over (item, tag) presence; agrees when the
    tag sets overlap at least half (Jaccard). Its share of exact agreement stays out of the item's
    mean: tag sets rarely match exactly."""

    label_class = MultiChoice
    type_name = "multi_choice"
    control = "many_options"
    in_item_agreement = False
    comparison_order = 2

    def answer_error(self, label: MultiChoice, value: Any) -> str | None:
        if not isinstance(value, list) or any(v not in label.options for v in value):
            return f"must be a list of options from {label.options}"
        if len(set(value)) != len(value):
            return "lists an option twice"
        return None

    def from_form(self, values: Sequence[object]) -> Any:
        # Every box ticked; the field sent with none ticked is an empty list.
        return [str(v) for v in values] if values else None

    def aggregate(
        self, label: MultiChoice, present: list[Any], ranked: Sequence[Ballot], item_id: int, fitted: Any
    ) -> FieldResult:
        counts = Counter(tag for v in present for tag in v)
        # Per tag, a majority of the voters' weight (each expert's quality); with equal qualities,
        # a plain majority of voters.
        cast = [
            (v.answer[label.name], max(v.reliability, 1e-6)) for v in ranked if v.answer.get(label.name) is not None
        ]
        weight: dict[str, float] = dict.fromkeys(counts, 0.0)
        for tags, w in cast:
            for tag in tags:
                weight[tag] += w
        total = sum(w for _, w in cast)
        chosen = sorted(t for t in counts if weight[t] * 2 > total * (1 + 1e-9))
        method = {"method": "per_tag_majority", "votes": dict(counts), "n": len(present)}
        # Only for telling disagreement: tag sets rarely match exactly, so it stays out of the mean.
        share = len([v for v in present if sorted(v) == chosen]) / len(present) if present else None
        return FieldResult(chosen, method, share)

    def alpha(self, label: MultiChoice, answers: Answers) -> float | None:
        return tag_alpha(answers, label.name, label.options)

    def matches(self, got: Any, reference: Any) -> bool:
        a, b = set(got or ()), set(reference or ())
        return not ((a or b) and len(a & b) * 2 < len(a | b))

    def gold_credit(self, label: MultiChoice, got: Any, reference: Any) -> float:
        # Jaccard overlap of the tag sets; two empty sets agree fully.
        a, b = set(got or ()), set(reference or ())
        return len(a & b) / len(a | b) if a or b else 1.0

    def true_value(self, label: MultiChoice, rng: random.Random) -> Any:
        return sorted(o for o in label.options if rng.random() < 0.3)

    def simulated_value(self, label: MultiChoice, rng: random.Random, truth: Any, correct: bool) -> Any:
        return truth if correct else sorted(o for o in label.options if rng.random() < 0.3)

    def gate_checks(self, label: MultiChoice) -> list[ColumnCheck]:
        options = "|".join(label.options)
        return [
            ColumnCheck(
                "ExpectColumnValuesToMatchRegex",
                label.name,
                f"{label.name} has an unknown option",
                {"regex": rf"^(?:(?:{options})(?:;(?:{options}))*)?$"},
            )
        ]
