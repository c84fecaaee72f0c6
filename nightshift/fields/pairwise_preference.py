"""Pairwise preference: A, B or a tie (the options)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from nightshift.fields.base import Ballot, FieldResult
from nightshift.fields.one_option import OneOptionField
from nightshift.projects.spec import PairwisePreference


class PairwisePreferenceField(OneOptionField[PairwisePreference]):
    """Aggregated by the majority, a tie when A and B draw; nominal alpha; agrees when equal."""

    label_class = PairwisePreference
    type_name = "pairwise_preference"

    def aggregate(
        self, label: PairwisePreference, present: list[Any], ranked: Sequence[Ballot], item_id: int, fitted: Any
    ) -> FieldResult:
        counts = Counter(present)
        value, share = preference(counts, label.options)
        method = {"method": "majority_with_ties", "votes": dict(counts), "n": len(present)}
        return FieldResult(value, method, share if present else None)

    def preferences(
        self, label: PairwisePreference, value: Any, method: Mapping[str, Any]
    ) -> list[tuple[str, str, float | None]]:
        # A and B are the first two responses; a tie orders nothing.
        return [(value, "B" if value == "A" else "A", None)] if value in ("A", "B") else []


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
