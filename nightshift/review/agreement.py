"""Agreement between experts: Krippendorff's alpha per field, and the signs of work not really done
(too fast for the text's length, the same text pasted by several experts).

Alpha comes from the `krippendorff` package, fed a units x values count matrix: its size grows with
the items and the options, never with the number of experts (nightshift.fields.alpha); each field
type (nightshift.fields) says how its answers are measured.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from nightshift.fields import field_type
from nightshift.fields.alpha import Answers
from nightshift.projects.spec import ProjectBody


def field_alphas(answers: Answers, project: ProjectBody) -> dict[str, float | None]:
    """Alpha per field: nominal for choices and preferences, ordinal for scales, nominal over
    (item, tag) presence for multi choice; free text has none. None: not measurable (fewer than two
    pairable answers, or every answer the same, so there is no disagreement to expect)."""
    alphas: dict[str, float | None] = {}
    for label in project.labels:
        kind = field_type(label)
        if kind.measures_alpha:
            alphas[label.name] = kind.alpha(label, answers)
    return alphas


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
    no space at the ends; UTF-8. ASCII text (nearly all of it) goes through a byte table, faster
    than the regex that handles the rest with the same result."""
    if text.isascii():
        return b" ".join(text.encode().lower().translate(_ASCII_NON_WORD_TO_SPACE).split())
    return _NON_WORD.sub(" ", text.lower()).strip().encode()


# ASCII upper case to lower, and every non-word byte dropped: one pass of bytes.translate.
_ASCII_LOWER = bytes(c + 32 if 65 <= c <= 90 else c for c in range(256))
_ASCII_NON_WORD = bytes(c for c in range(256) if c not in _ASCII_WORD)


def copy_hash(text: str) -> int:
    """_copy_key as a signed 64-bit number: what a round too big to hold keeps of each text.

    Python's own hash of the key (a third of the cost of a blake2b digest): it differs from one
    process to the next, so it is only ever compared within one call (gates.round_copies), and
    texts sharing one are compared in full, so a collision costs a comparison, never a verdict."""
    return hash(_copy_key(text))


def _copy_key(text: str) -> bytes:
    """The normalised text without its spaces: texts equal once normalised always share it, and it
    costs far less, so only the few texts sharing a key are normalised and compared."""
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
        if not field_type(label).checked_for_copies:
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
