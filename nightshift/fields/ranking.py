"""Ranking: the options (the model responses A, B, …) ordered best first."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from nightshift.fields import bradley_terry
from nightshift.fields.alpha import alpha
from nightshift.fields.base import Answers, Ballot, ColumnCheck, FieldResult, FieldType
from nightshift.projects.spec import Ranking

# A vote's weight never falls to nothing: a new expert's ranking still counts a little.
MIN_WEIGHT = 0.05


class RankingField(FieldType[Ranking]):
    """Aggregated by Bradley-Terry over the experts' rankings, each broken into the pairs it orders
    and weighed by its expert's quality: the final ranking orders the strengths, kept with their
    95% intervals and Kendall's W. Ordinal alpha over (item, option) ranks; agrees on the best."""

    label_class = Ranking
    type_name = "ranking"
    control = "ranking"
    comparison_order = 1

    def answer_error(self, label: Ranking, value: Any) -> str | None:
        if (
            not isinstance(value, list)
            or len(value) != len(label.options)
            or sorted(map(str, value)) != sorted(label.options)
            or not all(isinstance(v, str) for v in value)
        ):
            return f"must order {', '.join(label.options)}, each once, best first"
        return None

    def from_form(self, values: Sequence[object]) -> Any:
        # One select per option, each sending "option=place"; an option left without a place, or
        # two on one place, makes no order: the pairs stay as sent, for answer_error to refuse.
        places: dict[str, int] = {}
        for raw in values:
            option, _, place = str(raw).partition("=")
            if place.strip().isdigit() and len(place) < 4:
                places[option] = int(place)
        if not places:
            return None
        if len(set(places.values())) != len(places):
            return [f"{o}={p}" for o, p in places.items()]
        return sorted(places, key=places.__getitem__)

    def aggregate(
        self, label: Ranking, present: list[Any], ranked: Sequence[Ballot], item_id: int, fitted: Any
    ) -> FieldResult:
        index = {o: k for k, o in enumerate(label.options)}
        rankings: list[list[int]] = []
        comparisons: list[tuple[int, int, float]] = []
        for vote in ranked:
            value = vote.answer.get(label.name)
            if value is None or self.answer_error(label, value):
                continue
            order = [index[o] for o in value]
            rankings.append(order)
            comparisons += bradley_terry.ranking_comparisons(order, max(vote.reliability, MIN_WEIGHT))
        strengths = bradley_terry.fit(len(label.options), comparisons)
        method: dict[str, Any] = {
            "method": "bradley_terry",
            "scores": {o: round(strengths.scores[k], 4) for o, k in index.items()},
            "ci95": {o: [round(strengths.low[k], 4), round(strengths.high[k], 4)] for o, k in index.items()},
            "kendalls_w": bradley_terry.kendalls_w(rankings, len(label.options)),
            "n": len(rankings),
        }
        if not rankings:
            return FieldResult(None, method)
        value = [label.options[k] for k in strengths.order()]
        share = sum(1 for r in rankings if r[0] == index[value[0]]) / len(rankings)
        return FieldResult(value, method, share)

    def alpha(self, label: Ranking, answers: Answers) -> float | None:
        units = []
        for item in answers.values():
            rankings = [a.get(label.name) for a in item]
            for option in label.options:
                units.append([r.index(option) + 1 if isinstance(r, list) and option in r else None for r in rankings])
        return alpha(units, list(range(1, len(label.options) + 1)), "ordinal")

    def matches(self, got: Any, reference: Any) -> bool:
        # Agreeing on the best response is what a reviewer and a client act on.
        return isinstance(got, list) and isinstance(reference, list) and bool(got) and got[:1] == reference[:1]

    def gold_credit(self, label: Ranking, got: Any, reference: Any) -> float:
        # The share of pairs ordered as the reference orders them (1 - normalised Kendall distance).
        if not isinstance(got, list) or self.answer_error(label, got):
            return 0.0
        place = {o: k for k, o in enumerate(got)}
        pairs = [(a, b) for i, a in enumerate(reference) for b in reference[i + 1 :]]
        return sum(1 for a, b in pairs if place[a] < place[b]) / len(pairs) if pairs else 1.0

    def true_value(self, label: Ranking, rng: random.Random) -> Any:
        order = list(label.options)
        rng.shuffle(order)
        return order

    def simulated_value(self, label: Ranking, rng: random.Random, truth: Any, correct: bool) -> Any:
        if correct:
            return list(truth)
        order = list(label.options)
        rng.shuffle(order)
        return order

    def preferences(self, label: Ranking, value: Any, method: Mapping[str, Any]) -> list[tuple[str, str, float | None]]:
        if not isinstance(value, list) or self.answer_error(label, value):
            return []
        scores = method.get("scores") or {}
        return [
            (a, b, round(float(scores.get(a, 0.0)) - float(scores.get(b, 0.0)), 6))
            for i, a in enumerate(value)
            for b in value[i + 1 :]
        ]

    def response_scores(self, label: Ranking, value: Any, method: Mapping[str, Any]) -> dict[str, float]:
        return {o: float(s) for o, s in (method.get("scores") or {}).items()} if isinstance(value, list) else {}

    def true_value_from_faults(
        self, label: Ranking, faults: Mapping[str, Sequence[tuple[str, int, int]]], drawn: Any
    ) -> Any:
        # The answer with fewer planted faults is the better one; between equals, the drawn order
        # decides (never the letter: that would favour the first endpoint in every batch).
        if not set(label.options) <= set(faults):
            return None
        return sorted(label.options, key=lambda o: (len(faults[o]), drawn.index(o)))

    def gate_values(self, label: Ranking, values: Sequence[Any]) -> list[Any]:
        # The options a ranking holds, sorted: a permutation of the options gives exactly theirs.
        return [";".join(sorted(map(str, v))) if isinstance(v, list) else (None if v is None else "") for v in values]

    def gate_checks(self, label: Ranking) -> list[ColumnCheck]:
        return [
            ColumnCheck(
                "ExpectColumnValuesToBeInSet",
                label.name,
                f"{label.name} is not an order of {', '.join(label.options)}",
                {"value_set": [";".join(sorted(label.options))]},
            )
        ]
