"""Krippendorff's alpha, from the `krippendorff` package fed a units x values count matrix: its size
grows with the items and the options, never with the number of experts."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import krippendorff
import numpy as np

# Answers per item: the values each accepted annotation gave, one mapping per annotation.
Answers = Mapping[int, Sequence[Mapping[str, Any]]]


def alpha(units: Iterable[Sequence[Any]], domain: Sequence[Any], level: Literal["nominal", "ordinal"]) -> float | None:
    """Krippendorff's alpha of units (each: the values its coders gave; None for no value)."""
    position = {value: k for k, value in enumerate(domain)}
    width = len(domain)
    # The units x values count matrix, filled in one bincount of flat cell numbers.
    cells: list[int] = []
    count = 0
    for count, values in enumerate(units, start=1):
        base = (count - 1) * width
        for value in values:
            if value is not None and value in position:
                cells.append(base + position[value])
    if not cells:
        return None
    matrix = np.bincount(np.array(cells, dtype=np.int64), minlength=count * width).reshape(count, width)
    return alpha_of_counts(matrix, level)


def tag_alpha(answers: Answers, name: str, options: Sequence[str]) -> float | None:
    """Nominal alpha over (item, tag) units: every annotator of the item says the tag is there or not.
    Counted per item and tag, not built as a unit per pair: five tags make five times the units."""
    index = {tag: k for k, tag in enumerate(options)}
    width = len(options)
    cells: list[int] = []
    coders: list[int] = []
    for row, item in enumerate(answers.values()):
        coders.append(len(item))
        for answer in item:
            for tag in set(answer.get(name) or ()):
                if tag in index:
                    cells.append(row * width + index[tag])
    if not coders:
        return None
    present = np.bincount(np.array(cells, dtype=np.int64), minlength=len(coders) * width)
    absent = np.repeat(np.array(coders, dtype=np.int64), width) - present
    return alpha_of_counts(np.column_stack((absent, present)), "nominal")


def alpha_of_counts(matrix: np.ndarray, level: Literal["nominal", "ordinal"]) -> float | None:
    matrix = matrix[matrix.sum(axis=1) >= 2]  # only units with a pair of values say anything about agreement
    if not len(matrix) or np.count_nonzero(matrix.sum(axis=0)) < 2:
        return None
    value = krippendorff.alpha(
        value_counts=matrix.astype(float), value_domain=list(range(matrix.shape[1])), level_of_measurement=level
    )
    return None if math.isnan(value) else round(float(value), 4)
