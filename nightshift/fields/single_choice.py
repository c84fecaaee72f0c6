"""Single choice: one of the options."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from nightshift.fields.base import Ballot, FieldResult
from nightshift.fields.dawid_skene import PRIOR_STRENGTH, DawidSkene, dawid_skene
from nightshift.fields.one_option import OneOptionField
from nightshift.projects.spec import SingleChoice


class SingleChoiceField(OneOptionField[SingleChoice]):
    """Aggregated by Dawid-Skene's most probable class over the batch (or the majority vote, as the
    spec says); nominal alpha; agrees when equal."""

    label_class = SingleChoice
    type_name = "single_choice"

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
