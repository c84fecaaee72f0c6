"""Single choice: one of the options."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nightshift.fields.base import Ballot, FieldResult
from nightshift.fields.columns import Column, ColumnResults, clear_majorities, first_per_item, tallies
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

    def aggregate_column(self, label: SingleChoice, column: Column, fitted: Any) -> ColumnResults | None:
        index = {option: k for k, option in enumerate(label.options)}
        try:
            codes = np.fromiter((index[v] for v in column.values), dtype=np.int64, count=len(column.values))
        except (KeyError, TypeError):  # an answer that is not an option: item by item
            return None
        items, owners, sizes = len(column.item_ids), column.owners, column.counts.tolist()
        width = len(label.options)
        counts = np.bincount(owners * width + codes, minlength=items * width).reshape(items, width)
        top = counts.max(axis=1) if width else np.zeros(items, dtype=np.int64)
        # Ties go to the choice of the most reliable expert among the tied.
        first = first_per_item(owners, counts[owners, codes] == top[owners], items)
        majority = np.full(items, -1, dtype=np.int64)
        majority[first >= 0] = codes[first[first >= 0]]
        final = majority.copy()
        model: DawidSkene | None = fitted
        rows = np.full(items, -1, dtype=np.int64)
        if model is not None and len(model.item_ids):
            ids = np.asarray(column.item_ids, dtype=np.int64)
            at = np.minimum(np.searchsorted(model.item_ids, ids), len(model.item_ids) - 1)
            rows = np.where(model.item_ids[at] == ids, at, -1)
            best = model.matrix.argmax(axis=1)
            final = np.where(rows >= 0, best[np.maximum(rows, 0)], final)
        options, tallied = label.options, tallies(column)
        values: list[Any] = []
        methods: list[dict[str, Any]] = []
        shares: list[float | None] = []
        for n, (size, row, code, vote) in enumerate(
            zip(sizes, rows.tolist(), final.tolist(), majority.tolist(), strict=True)
        ):
            value = options[code] if code >= 0 else None
            if row >= 0:
                assert model is not None
                method: dict[str, Any] = {
                    "method": "dawid_skene",
                    "posterior": round(float(model.matrix[row, code]), 4),
                    "majority": options[vote] if vote >= 0 else None,
                    "votes": tallied[n],
                    "iterations": model.iterations,
                    "prior_strength": PRIOR_STRENGTH,
                    "n": size,
                }
            else:
                method = {"method": "majority_vote", "votes": tallied[n], "n": size}
            values.append(value)
            methods.append(method)
            shares.append(tallied[n].get(value, 0) / size if size else None)
        clear = clear_majorities(column, codes, np.equal)
        return ColumnResults(values, methods, shares, clear, codes, final)
