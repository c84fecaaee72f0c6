"""Graded pairwise preference: which of two responses is better and by how much, a whole number
from -strength (the first much better) through 0 (a tie) to +strength (the second much better)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nightshift.fields import bradley_terry
from nightshift.fields.base import Ballot, FieldResult
from nightshift.fields.ordinal_scale import ScaleField
from nightshift.fields.ranking import MIN_WEIGHT
from nightshift.projects.spec import GradedPreference


def comparisons(value: int, weight: float) -> list[tuple[int, int, float]]:
    """One expert's graded preference as Bradley-Terry comparisons of option 0 and option 1: a
    preference of strength s is s wins (times the expert's weight); a tie, half a win each way."""
    if value == 0:
        return [(0, 1, weight / 2), (1, 0, weight / 2)]
    return [(0, 1, -value * weight)] if value < 0 else [(1, 0, value * weight)]


class GradedPreferenceField(ScaleField[GradedPreference]):
    """An ordinal scale centred on a tie: the value is the experts' weighted median; the two
    responses' Bradley-Terry strengths across the experts (each preference weighed by its strength
    and its expert's quality), with 95% intervals, come with it; ordinal alpha."""

    label_class = GradedPreference
    type_name = "graded_preference"
    control = "graded_preference"

    def aggregate(
        self, label: GradedPreference, present: list[Any], ranked: Sequence[Ballot], item_id: int, fitted: Any
    ) -> FieldResult:
        median = super().aggregate(label, present, ranked, item_id, fitted)
        pairs: list[tuple[int, int, float]] = []
        for vote in ranked:
            value = vote.answer.get(label.name)
            if value is not None and self.answer_error(label, value) is None:
                pairs += comparisons(value, max(vote.reliability, MIN_WEIGHT))
        strengths = bradley_terry.fit(2, pairs)
        method = dict(median.method) | {
            "method": "median_with_bradley_terry",
            "scores": {o: round(strengths.scores[k], 4) for k, o in enumerate(label.options)},
            "ci95": {o: [round(strengths.low[k], 4), round(strengths.high[k], 4)] for k, o in enumerate(label.options)},
        }
        return FieldResult(median.value, method, median.share)

    def preferences(
        self, label: GradedPreference, value: Any, method: Mapping[str, Any]
    ) -> list[tuple[str, str, float | None]]:
        if not isinstance(value, int) or isinstance(value, bool) or value == 0:
            return []
        first, second = label.options
        chosen, rejected = (first, second) if value < 0 else (second, first)
        scores = method.get("scores") or {}
        margin = scores.get(chosen, 0.0) - scores.get(rejected, 0.0) if scores else None
        return [(chosen, rejected, round(margin, 4) if margin is not None else None)]

    def response_scores(self, label: GradedPreference, value: Any, method: Mapping[str, Any]) -> dict[str, float]:
        return {o: float(s) for o, s in (method.get("scores") or {}).items()}

    def scaled(self, label: GradedPreference, value: Any) -> float | None:
        # A preference between two responses is not a score of one.
        return None
