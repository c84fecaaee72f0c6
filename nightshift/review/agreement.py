"""Agreement between experts: Krippendorff's alpha per field, and the signs of work not really done
(too fast for the text's length, the same text pasted by several experts).

Alpha comes from the `krippendorff` package, fed a units x values count matrix: its size grows with
the items and the options, never with the number of experts.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import krippendorff
import numpy as np

from nightshift.projects.spec import FreeText, MultiChoice, OrdinalScale, ProjectBody

# Answers per item: the values each accepted annotation gave, one mapping per annotation.
Answers = Mapping[int, Sequence[Mapping[str, Any]]]


def field_alphas(answers: Answers, project: ProjectBody) -> dict[str, float | None]:
    """Alpha per field: nominal for choices and preferences, ordinal for scales, nominal over
    (item, tag) presence for multi choice; free text has none. None: not measurable (fewer than two
    pairable answers, or every answer the same, so there is no disagreement to expect)."""
    alphas: dict[str, float | None] = {}
    for label in project.labels:
        if isinstance(label, FreeText):
            continue
        if isinstance(label, OrdinalScale):
            domain: list[Any] = list(range(label.min, label.max + 1))
            units = [[a.get(label.name) for a in item] for item in answers.values()]
            alphas[label.name] = alpha(units, domain, "ordinal")
        elif isinstance(label, MultiChoice):
            alphas[label.name] = _tag_alpha(answers, label.name, label.options)
        else:
            units = [[a.get(label.name) for a in item] for item in answers.values()]
            alphas[label.name] = alpha(units, list(label.options), "nominal")
    return alphas


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
    return _alpha_of_counts(matrix, level)


def _tag_alpha(answers: Answers, name: str, options: Sequence[str]) -> float | None:
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
    return _alpha_of_counts(np.column_stack((absent, present)), "nominal")


def _alpha_of_counts(matrix: np.ndarray, level: Literal["nominal", "ordinal"]) -> float | None:
    matrix = matrix[matrix.sum(axis=1) >= 2]  # only units with a pair of values say anything about agreement
    if not len(matrix) or np.count_nonzero(matrix.sum(axis=0)) < 2:
        return None
    value = krippendorff.alpha(
        value_counts=matrix.astype(float), value_domain=list(range(matrix.shape[1])), level_of_measurement=level
    )
    return None if math.isnan(value) else round(float(value), 4)


def plausible_seconds(item_text_length: int, min_seconds: int, chars_per_second: float | None) -> int:
    """The least time a careful expert needs: the floor, plus reading the item at the fastest pace."""
    reading = item_text_length / chars_per_second if chars_per_second else 0
    return int(min_seconds + reading)


# Every byte that is not a word character ([A-Za-z0-9_]) becomes a space: the ASCII case of \W.
_ASCII_WORD = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_ASCII_NON_WORD_TO_SPACE = bytes(c if c in _ASCII_WORD else 32 for c in range(256))
_NON_WORD = re.compile(r"\W+")


def normalised_text(text: str) -> bytes:
    """The text as compared for copies: lower case, every run of non-word characters one space,
    no space at the ends; UTF-8. ASCII text (nearly all of it) goes through a byte table, three
    times faster than the regex that handles the rest with the same result."""
    if text.isascii():
        return b" ".join(text.encode().lower().translate(_ASCII_NON_WORD_TO_SPACE).split())
    return _NON_WORD.sub(" ", text.lower()).strip().encode()


# ASCII upper case to lower, and every non-word byte dropped: one pass of bytes.translate.
_ASCII_LOWER = bytes(c + 32 if 65 <= c <= 90 else c for c in range(256))
_ASCII_NON_WORD = bytes(c for c in range(256) if c not in _ASCII_WORD)


def _copy_key(text: str) -> bytes:
    """The normalised text without its spaces: texts equal once normalised always share it, and it
    costs a third as much, so only the few texts sharing a key are normalised and compared."""
    if text.isascii():
        return text.encode().translate(_ASCII_LOWER, _ASCII_NON_WORD)
    return normalised_text(text).replace(b" ", b"")


def pasted_texts(rows: Sequence[Mapping[str, Any]], project: ProjectBody) -> dict[int, str]:
    """Submissions whose free text is identical (ignoring case, spacing, punctuation) to another
    expert's in the same rows: submission id → the field. Every copy is flagged: which was first
    says nothing about who copied whom."""
    min_length = project.gates.min_copied_text_length
    flagged: dict[int, str] = {}
    for label in project.labels:
        if not isinstance(label, FreeText):
            continue
        name = label.name
        # Copy key -> the rows that wrote it; nearly every text is written once.
        by_key: dict[bytes, list[Mapping[str, Any]]] = defaultdict(list)
        for row in rows:
            value = row["answer"].get(name)
            if isinstance(value, str) and len(value.strip()) >= min_length:
                by_key[_copy_key(value)].append(row)
        for candidates in by_key.values():
            if len(candidates) < 2:
                continue
            by_text: dict[bytes, list[Mapping[str, Any]]] = defaultdict(list)
            for row in candidates:
                by_text[normalised_text(row["answer"][name])].append(row)
            for copies in by_text.values():
                if len(copies) > 1 and len({int(row["expert_id"]) for row in copies}) > 1:
                    for row in copies:
                        flagged.setdefault(int(row["submission_id"]), name)
    return flagged
