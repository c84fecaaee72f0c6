"""One field's answers over a whole batch of items, as arrays: what a field type aggregates in one
pass (FieldType.aggregate_column) instead of item by item.

A review round aggregates every item of a batch, and again those a pause touches. Item by item,
that is a few Python calls per answer per field; over arrays it is a few NumPy calls per field.
A field type's column results must equal its item-by-item ones (the tests hold each to it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from nightshift.fields.base import Ballot


@dataclass(frozen=True)
class Column:
    """One field's non-null answers, item by item, each item's most reliable expert first."""

    item_ids: Sequence[int]
    # Per item, its votes most reliable first (what FieldType.aggregate calls ranked).
    ranked: Sequence[Sequence[Ballot]]
    # The answers, item after item; starts[n]:starts[n + 1] are item n's.
    values: Sequence[Any]
    starts: np.ndarray
    # Per answer, its expert's reliability, and whether a reviewer approved (or corrected) it.
    weights: np.ndarray
    approved: np.ndarray

    @property
    def counts(self) -> np.ndarray:
        """Per item, how many answers it has."""
        return np.diff(self.starts)

    @property
    def owners(self) -> np.ndarray:
        """Per answer, its item's position."""
        return np.repeat(np.arange(len(self.item_ids)), self.counts)

    def present(self, n: int) -> list[Any]:
        """Item n's answers, most reliable expert first."""
        return list(self.values[int(self.starts[n]) : int(self.starts[n + 1])])

    def by_count(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The items with answers, grouped by how many: (their positions, an items x answers
        array of their answers' positions, each row most reliable first)."""
        counts = self.counts
        for size in np.unique(counts[counts > 0]):
            rows = np.flatnonzero(counts == size)
            yield rows, self.starts[rows][:, None] + np.arange(size)


@dataclass(frozen=True)
class ColumnResults:
    """A field's results for every item of a Column, as FieldType.aggregate would give them."""

    values: list[Any]
    methods: list[dict[str, Any]]
    # Per item, the share of its experts agreeing with the value; None: not compared.
    shares: list[float | None]
    # Per item: a clear majority behind one answer (review.aggregate's rule).
    clear: np.ndarray
    # With a fixed set of answers (FieldType.alternatives): each answer as a whole number, equal
    # answers alike, and per item its value's (-1: none of its answers), for the confidence in it.
    codes: np.ndarray | None = None
    final_codes: np.ndarray | None = None


def clear_majorities(
    column: Column, codes: np.ndarray, agree: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """Per item, whether one answer has more votes behind it than any answer it does not match:
    each answer is backed by the answers that agree with it (agree(value, candidate), elementwise
    over arrays of codes); the first answer with the most backing leads. An item without answers
    is clear."""
    clear = np.ones(len(column.item_ids), dtype=bool)
    for rows, positions in column.by_count():
        answers = codes[positions]
        # matched[r, i, j]: item r's answer i agrees with its answer j as the candidate.
        matched = agree(answers[:, :, None], answers[:, None, :])
        support = matched.sum(axis=1)
        top = support.max(axis=1)
        leader = np.argmax(support == top[:, None], axis=1)
        with_leader = matched[np.arange(len(rows)), :, leader]
        clear[rows] = ~((~with_leader) & (support >= top[:, None])).any(axis=1)
    return clear


def first_per_item(owners: np.ndarray, mask: np.ndarray, items: int) -> np.ndarray:
    """Per item, the position of its first answer where mask holds; -1 where none does."""
    first = np.full(items, -1, dtype=np.int64)
    hits = np.flatnonzero(mask)
    found, at = np.unique(owners[hits], return_index=True)
    first[found] = hits[at]
    return first


def tallies(column: Column) -> list[dict[Any, int]]:
    """Per item, each distinct answer's count, in the order the answers first appear."""
    out = []
    values, starts = column.values, column.starts.tolist()
    for n in range(len(column.item_ids)):
        tally: dict[Any, int] = {}
        for value in values[starts[n] : starts[n + 1]]:
            tally[value] = tally.get(value, 0) + 1
        out.append(tally)
    return out
