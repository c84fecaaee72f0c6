"""The signals the submissions gate finds over a round's rows (work.signals): rushing against what
there was to read and write, echoes of the item, exact copies, near-duplicates and identical
answer sequences across experts; recorded with the gate's verdicts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from nightshift.fields import field_type
from nightshift.projects.spec import ProjectBody
from nightshift.review.agreement import plausible_seconds
from nightshift.review.near_duplicates import earlier_texts, near_duplicates
from nightshift.review.sequences import same_sequences
from nightshift.work import signals
from nightshift.work.signals import Signal

# The fastest plausible typing: writing this many characters a second is beyond a careful expert.
TYPING_CHARS_PER_SECOND = 8.0


def written_length(answer: Mapping[str, Any], project: ProjectBody) -> int:
    total = 0
    for label in project.labels:
        kind = field_type(label)
        if kind.checked_for_copies or kind.checked_for_echoes:
            text = kind.echo_text(label, answer.get(label.name))
            total += len(text) if text else 0
    return total


def rushed(rows: Sequence[Mapping[str, Any]], project: ProjectBody) -> list[Signal]:
    """Time on task under what reading the item and typing the answer take at the fastest
    plausible pace; the score is the share of that time missing. Off with the reading check
    (gates.reading_chars_per_second unset: simulations)."""
    gates = project.gates
    if gates.reading_chars_per_second is None:
        return []
    found = []
    for row in rows:
        written = written_length(row["answer"], project)
        needed = plausible_seconds(
            int(row["item_length"]), gates.min_time_on_task_seconds, gates.reading_chars_per_second
        ) + int(written / TYPING_CHARS_PER_SECOND)
        seconds = int(row["time_on_task_seconds"])
        if needed > 0 and seconds < needed:
            evidence = {
                "seconds": seconds,
                "needed": needed,
                "read_chars": int(row["item_length"]),
                "written_chars": written,
            }
            found.append(Signal(int(row["submission_id"]), "rushed", round(1 - seconds / needed, 4), evidence))
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
