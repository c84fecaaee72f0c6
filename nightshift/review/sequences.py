"""Identical answer sequences: two experts who give the same answers item after item, on items
where others answered differently, are likely one person or sharing answers. Agreeing on easy
items is expected; agreeing on the contested ones, again and again, is not.

Counted over arrays for the whole round (NumPy): every pair of experts on an item, whether they
gave the same answer, and whether the item was contested, then totals per pair of experts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nightshift.fields import compared_labels
from nightshift.projects.spec import ProjectBody
from nightshift.work.signals import Signal

# Items two experts must share before their answers are compared as a sequence.
MIN_SHARED = 5
# Contested items (not every expert on it agreed) where the two gave the same answer.
MIN_CONTESTED = 3
# The share of their shared items with the same answer.
MIN_IDENTICAL_SHARE = 0.9


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(sorted(map(str, value)))
    if isinstance(value, dict):
        return tuple(sorted((str(k), str(v)) for k, v in value.items()))
    return value


def same_sequences(rows: Sequence[Mapping[str, Any]], project: ProjectBody) -> list[Signal]:
    """A signal on each contested same answer of two experts whose answers are the same on at
    least MIN_IDENTICAL_SHARE of MIN_SHARED or more shared items, MIN_CONTESTED of them contested.
    The fields compared are those an answer is judged by (choices, scales, tags; not free text:
    copies are found apart)."""
    names = [label.name for label in compared_labels(project.labels)]
    if not names or len(rows) < 2:
        return []
    codes: dict[tuple[Any, ...], int] = {}

    def key(answer: Mapping[str, Any]) -> tuple[Any, ...]:
        # Plain values as they are; only tags (lists) and rubrics (objects) need a hashable form.
        return tuple(
            v if (c := v.__class__) is not list and c is not dict else _hashable(v) for v in map(answer.get, names)
        )

    answer_code = np.fromiter(
        (codes.setdefault(key(row["answer"]), len(codes)) for row in rows), dtype=np.int64, count=len(rows)
    )
    item = np.fromiter((row["item_id"] for row in rows), dtype=np.int64, count=len(rows))
    expert = np.fromiter((row["expert_id"] for row in rows), dtype=np.int64, count=len(rows))
    submission = np.fromiter((row["submission_id"] for row in rows), dtype=np.int64, count=len(rows))
    order = np.lexsort((expert, item))
    item, expert, submission, answer_code = item[order], expert[order], submission[order], answer_code[order]
    # Contested: the item's answers are not all one. Per item, from its first and last row.
    starts = np.flatnonzero(np.r_[True, item[1:] != item[:-1]])
    lows = np.minimum.reduceat(answer_code, starts)
    highs = np.maximum.reduceat(answer_code, starts)
    contested = np.repeat(lows != highs, np.diff(np.r_[starts, len(item)]))
    # Every pair on an item: row k with row k + d, for each distance d within the largest item.
    biggest = int(np.diff(np.r_[starts, len(item)]).max())
    left, right = [], []
    for d in range(1, biggest):
        on_item = np.flatnonzero((item[:-d] == item[d:]) & (expert[:-d] != expert[d:]))
        left.append(on_item)
        right.append(on_item + d)
    if not left:
        return []
    a, b = np.concatenate(left), np.concatenate(right)
    if not len(a):
        return []
    span = int(expert.max()) + 1
    pair = np.minimum(expert[a], expert[b]) * span + np.maximum(expert[a], expert[b])
    same = answer_code[a] == answer_code[b]
    hit = same & contested[a]
    pairs, which = np.unique(pair, return_inverse=True)
    shared = np.bincount(which, minlength=len(pairs))
    identical = np.bincount(which, weights=same, minlength=len(pairs))
    contested_same = np.bincount(which, weights=hit, minlength=len(pairs))
    suspect = (shared >= MIN_SHARED) & (contested_same >= MIN_CONTESTED) & (identical >= MIN_IDENTICAL_SHARE * shared)
    if not suspect.any():
        return []
    found: dict[int, Signal] = {}
    for k in np.flatnonzero(hit & suspect[which]):
        p = which[k]
        share = float(identical[p] / shared[p])
        evidence = {
            "shared_items": int(shared[p]),
            "identical": int(identical[p]),
            "contested_identical": int(contested_same[p]),
        }
        for sid in (int(submission[a[k]]), int(submission[b[k]])):
            found[sid] = Signal(sid, "same_sequence", round(share, 4), evidence)
    return list(found.values())
