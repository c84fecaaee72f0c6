"""Bounds on values that arrive from outside (client rows, expert answers, form fields).

Every value a client or an expert sends ends up in a parser, in the database or in a message.
PostgreSQL refuses a NUL character in text and in JSON, JSON serialisers give up on deep nesting,
and numbers beyond 64 bits or non-finite floats have no place in a JSON column. Each is refused
here first, with a reason that names the problem and never repeats the value.
"""

from __future__ import annotations

import math
from typing import Any

# Nesting deeper than this is refused: no label schema or gold answer needs more, and the JSON
# libraries on the way to the database stop at a few hundred levels.
MAX_DEPTH = 32
# Values in one document (an answer, a gold answer, a row).
MAX_NODES = 100_000
# Integers are kept to what a 64-bit column or a JSON number read by any client can hold.
MAX_INT = 2**63 - 1
# What a page's form field or a number written as text may hold, in characters.
MAX_NUMBER_TEXT = 40


class BoundsError(ValueError):
    """A value outside the bounds: the message says which bound, never the value."""


def text_problem(value: str) -> str | None:
    """Why a text cannot be stored, or None."""
    if "\x00" in value:
        return "holds a NUL character"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "is not valid Unicode (a lone surrogate)"
    return None


def number_problem(value: int | float) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if -MAX_INT - 1 <= value <= MAX_INT else "is a number out of range"
    if not math.isfinite(value):
        return "is not a finite number"
    return None


def json_problem(value: Any, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> str | None:
    """Why a JSON-like value (dicts, lists, text, numbers, true, false, null) cannot be stored, or None.

    Walked with a stack of its own, not by recursion: a value nested thousands deep must be refused,
    not crash the walk that refuses it."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    nodes = 0
    while stack:
        current, depth = stack.pop()
        nodes += 1
        if nodes > max_nodes:
            return f"holds more than {max_nodes} values"
        if current is None or isinstance(current, bool):
            continue
        if isinstance(current, str):
            problem = text_problem(current)
        elif isinstance(current, int | float):
            problem = number_problem(current)
        elif isinstance(current, dict | list):
            if depth > max_depth:
                return f"is nested deeper than {max_depth} levels"
            if isinstance(current, dict):
                for key in current:
                    if not isinstance(key, str):
                        return "has a key that is not text"
                    if (problem := text_problem(key)) is not None:
                        return f"has a key that {problem}"
                stack.extend((child, depth + 1) for child in current.values())
            else:
                stack.extend((child, depth + 1) for child in current)
            continue
        else:
            return "holds a value that is not JSON"
        if problem is not None:
            return problem
    return None


def check_json(value: Any, what: str, max_depth: int = MAX_DEPTH) -> None:
    """BoundsError naming `what` if the value is out of bounds."""
    problem = json_problem(value, max_depth)
    if problem is not None:
        raise BoundsError(f"{what} {problem}")


def clean_text(value: str) -> str:
    """A text that can be stored whatever it held: NUL and lone surrogates replaced by U+FFFD.
    For what is kept to show ops (a refused row's raw text), never for data that is delivered."""
    if text_problem(value) is None:
        return value
    return value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
