"""The signals the submissions gate finds over a round's rows (work.signals): rushing against what
there was to read and write, echoes of the item, exact copies, near-duplicates and identical
answer sequences across experts; recorded with the gate's verdicts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from nightshift.fields import field_type
from nightshift.projects.spec import ProjectBody
from nightshift.review.near_duplicates import earlier_texts, near_duplicates
from nightshift.review.sequences import same_sequences
from nightshift.work import signals
from nightshift.work.signals import Signal

# The fastest plausible typing: writing this many characters a second is beyond a careful expert.
TYPING_CHARS_PER_SECOND = 8.0


def _writers(project: ProjectBody) -> tuple[list[str], list[tuple[Any, Any]]]:
    """The fields an expert writes in: plain text fields by name (their value is the text), and
    the rest (a rewrite, a chat) with the field type that finds their text."""
    plain, others = [], []
    for label in project.labels:
        kind = field_type(label)
        if kind.checked_for_copies or kind.checked_for_echoes:
            if kind.type_name == "free_text":
                plain.append(label.name)
            else:
                others.append((label, kind))
    return plain, others


def written_lengths(answers: Sequence[Mapping[str, Any]], project: ProjectBody) -> Any:
    """Characters each answer writes, over its free text and the texts of its rewrites and chats."""
    plain, others = _writers(project)
    total = np.zeros(len(answers))
    for name in plain:
        total += np.fromiter(
            (len(v) if (v := a.get(name)).__class__ is str else 0 for a in answers),
            dtype=np.float64,
            count=len(answers),
        )
    for label, kind in others:
        total += np.fromiter(
            (len(t) if (t := kind.echo_text(label, a.get(label.name))) else 0 for a in answers),
            dtype=np.float64,
            count=len(answers),
        )
    return total


def rushed(rows: Sequence[Mapping[str, Any]], project: ProjectBody) -> list[Signal]:
    """Time on task under what reading the item and typing the answer take at the fastest
    plausible pace; the score is the share of that time missing. Off with the reading check
    (gates.reading_chars_per_second unset: simulations)."""
    gates = project.gates
    cps = gates.reading_chars_per_second
    if cps is None or not rows:
        return []
    seconds = np.fromiter((row["time_on_task_seconds"] for row in rows), dtype=np.float64, count=len(rows))
    read = np.fromiter((row["item_length"] for row in rows), dtype=np.float64, count=len(rows))
    written = written_lengths([row["answer"] for row in rows], project)
    # As review.agreement.plausible_seconds, plus the typing, for the whole round at once.
    needed = np.floor(gates.min_time_on_task_seconds + read / cps) + np.floor(written / TYPING_CHARS_PER_SECOND)
    found = []
    for k in np.flatnonzero(seconds < needed):
        row = rows[int(k)]
        evidence = {
            "seconds": int(seconds[k]),
            "needed": int(needed[k]),
            "read_chars": int(read[k]),
            "written_chars": int(written[k]),
        }
        score = round(1 - float(seconds[k]) / float(needed[k]), 4)
        found.append(Signal(int(row["submission_id"]), "rushed", score, evidence))
    return found


def round_signals(
    rows: Sequence[Mapping[str, Any]],
    project: ProjectBody,
    copies: Mapping[int, str],
    earlier: Sequence[Mapping[str, Any]] = (),
) -> list[Signal]:
    """Every signal over these rows (submissions_to_gate's, after add_echoes). copies: the exact
    copies the gate judged (submission id -> field); earlier: answers judged before on the same
    items (near_duplicates.earlier_texts)."""
    found = rushed(rows, project)
    for row in rows:
        if (why := row.get("echoed")) is not None:
            found.append(Signal(int(row["submission_id"]), "echo", 1.0, {"why": why}))
    found += [Signal(sid, "copy", 1.0, {"field": name}) for sid, name in copies.items()]
    found += near_duplicates(rows, project, earlier)
    found += same_sequences(rows, project)
    return found


def record_round_signals(
    session: Session, rows: Sequence[Mapping[str, Any]], project: ProjectBody, copies: Mapping[int, str]
) -> int:
    # Rows still submitted are the round's; what was judged before is only compared with.
    ids = {int(row["submission_id"]) for row in rows}
    earlier = [r for r in earlier_texts(session, rows, project) if r["submission_id"] not in ids]
    return signals.record(session, round_signals(rows, project, copies, earlier))
