"""Multi choice: a list of distinct options (tags)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from nightshift.fields.alpha import tag_alpha
from nightshift.fields.base import Answers, Ballot, ColumnCheck, FieldResult, FieldType
from nightshift.fields.columns import Column, ColumnResults, clear_majorities
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

    def aggregate_column(self, label: MultiChoice, column: Column, fitted: Any) -> ColumnResults | None:
        index = {option: k for k, option in enumerate(label.options)}
        if len(index) > 62:  # a tag set as the bits of one int64
            return None
        masks = np.zeros(len(column.values), dtype=np.int64)
        tag_owner: list[int] = []
        tag_code: list[int] = []
        # Tag lists repeat across a batch: each distinct one is checked and encoded once.
        encoded: dict[tuple[Any, ...], tuple[int, list[int]] | None] = {}
        for n, tags in enumerate(column.values):
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                return None
            key = tuple(tags)
            if key not in encoded:
                # A set of distinct known options, or item by item (as aggregate reads it).
                valid = len(set(key)) == len(key) and all(t in index for t in key)
                encoded[key] = (sum(1 << index[t] for t in key), [index[t] for t in key]) if valid else None
            found = encoded[key]
            if found is None:
                return None
            masks[n] = found[0]
            tag_owner += [n] * len(found[1])
            tag_code += found[1]
        items, owners, sizes = len(column.item_ids), column.owners, column.counts.tolist()
        width = len(label.options)
        weight = np.maximum(column.weights, 1e-6)
        # Per item and tag, a majority of the voters' weight: summed in the votes' order, as aggregate does.
        answers = np.asarray(tag_owner, dtype=np.int64)
        backing = np.bincount(
            owners[answers] * width + np.asarray(tag_code, dtype=np.int64),
            weights=weight[answers],
            minlength=items * width,
        ).reshape(items, width)
        total = np.bincount(owners, weights=weight, minlength=items)
        carried = backing * 2 > (total * (1 + 1e-9))[:, None]
        chosen = (carried.astype(np.int64) << np.arange(width, dtype=np.int64)).sum(axis=1)
        agreeing = np.bincount(owners, weights=masks == chosen[owners], minlength=items)
        # Each item's votes per tag, in the order the tags first appear among its answers (as
        # aggregate counts them): one entry per (item, tag), ordered by its first occurrence.
        pairs, first, tally = np.unique(
            owners[answers] * width + np.asarray(tag_code, dtype=np.int64), return_index=True, return_counts=True
        )
        in_order = np.argsort(first, kind="stable")
        pair_item = pairs[in_order] // width
        tag_names = [label.options[k] for k in (pairs[in_order] % width).tolist()]
        tag_votes = tally[in_order].tolist()
        bounds = np.searchsorted(pair_item, np.arange(items + 1)).tolist()
        named: dict[int, list[str]] = {}
        values: list[Any] = []
        methods: list[dict[str, Any]] = []
        shares: list[float | None] = []
        for n, (size, mask, same) in enumerate(zip(sizes, chosen.tolist(), agreeing.tolist(), strict=True)):
            if mask not in named:
                named[mask] = sorted(o for o, k in index.items() if mask >> k & 1)
            low, high = bounds[n], bounds[n + 1]
            values.append(list(named[mask]))
            votes = dict(zip(tag_names[low:high], tag_votes[low:high], strict=True))
            methods.append({"method": "per_tag_majority", "votes": votes, "n": size})
            shares.append(same / size if size else None)
        clear = clear_majorities(column, masks, _overlapping)
        return ColumnResults(values, methods, shares, clear)

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


def _overlapping(got: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """matches over arrays of tag sets as bit masks."""
    either = got | reference
    agreeing: np.ndarray = (either == 0) | (
        np.bitwise_count(got & reference).astype(np.int64) * 2 >= np.bitwise_count(either)
    )
    return agreeing
