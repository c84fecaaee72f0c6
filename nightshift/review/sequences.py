"""Identical answer sequences: two experts who give the same answers item after item, on items
where others answered differently, are likely one person or sharing answers. Agreeing on easy
items is expected; agreeing on the contested ones, again and again, is not."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from nightshift.fields import field_type
from nightshift.projects.spec import ProjectBody
from nightshift.work.signals import Signal

# Items two experts must share before their answers are compared as a sequence.
MIN_SHARED = 5
# Contested items (not every expert on it agreed) where the two gave the same answer.
MIN_CONTESTED = 3
# The share of their shared items with the same answer.
MIN_IDENTICAL_SHARE = 0.9


def same_sequences(rows: Sequence[Mapping[str, Any]], project: ProjectBody) -> list[Signal]:
    """A signal on each submission of two experts whose answers are the same on at least
    MIN_IDENTICAL_SHARE of MIN_SHARED or more shared items, MIN_CONTESTED of them contested. Only
    fields with a fixed set of answers are compared (none: no signal)."""
    names = [label.name for label in project.labels if field_type(label).comparison_order is not None]
    if not names:
        return []

    def key(answer: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(_hashable(answer.get(name)) for name in names)

    by_item: dict[int, list[tuple[int, int, tuple[Any, ...]]]] = defaultdict(list)
    for row in rows:
        by_item[int(row["item_id"])].append((int(row["expert_id"]), int(row["submission_id"]), key(row["answer"])))
    shared: dict[tuple[int, int], int] = defaultdict(int)
    same: dict[tuple[int, int], int] = defaultdict(int)
    contested_same: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for votes in by_item.values():
        if len(votes) < 2:
            continue
        contested = len({answer for _, _, answer in votes}) > 1
        for n, (expert, submission, answer) in enumerate(votes):
            for other_expert, other_submission, other_answer in votes[n + 1 :]:
                if other_expert == expert:
                    continue
                pair = (expert, other_expert) if expert < other_expert else (other_expert, expert)
                shared[pair] += 1
                if answer == other_answer:
                    same[pair] += 1
                    if contested:
                        contested_same[pair] += [(submission, other_submission)]
    found: dict[int, Signal] = {}
    for pair, n in shared.items():
        identical = same[pair]
        hits = contested_same.get(pair, [])
        if n < MIN_SHARED or len(hits) < MIN_CONTESTED or identical / n < MIN_IDENTICAL_SHARE:
            continue
        evidence = {"shared_items": n, "identical": identical, "contested_identical": len(hits)}
        for submissions in hits:
            for submission in submissions:
                found[submission] = Signal(submission, "same_sequence", round(identical / n, 4), evidence)
    return list(found.values())


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(sorted(map(str, value)))
    if isinstance(value, dict):
        return tuple(sorted((str(k), str(v)) for k, v in value.items()))
    return value
