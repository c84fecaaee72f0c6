"""Review's gates: what a gate found, the submissions it checks, and its verdict recorded and
applied."""

from __future__ import annotations

import datetime as dt
from array import array
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from sqlalchemy import ColumnElement, Text, cast, func, select, true
from sqlalchemy.orm import Session

from nightshift.fields import field_type
from nightshift.generate.responses import lengths_in
from nightshift.platform.heap import without_collection
from nightshift.platform.models import Assignment, Batch, GateRun, Item, Submission, utcnow
from nightshift.platform.sql import matches_any, plain_rows, refresh_statistics, update_ids
from nightshift.projects.registry import project_body
from nightshift.projects.spec import ProjectBody
from nightshift.review.agreement import copy_hash, pasted_texts
from nightshift.review.echoes import echoed_texts, shown_texts
from nightshift.review.policy import awaiting_review

# A part of a batch by item id: (after, up to), either end open (None).
ItemRange = tuple[int | None, int | None]
WHOLE_BATCH: ItemRange = (None, None)


@dataclass
class GateOutcome:
    """What a gate found: the ids it looked at and, per failing id, why."""

    gate: str
    evaluated_ids: list[int]
    failures: dict[int, str]
    thresholds: dict[str, Any]
    expectations: list[dict[str, Any]]
    docs_url: str | None = None

    @property
    def success(self) -> bool:
        return not self.failures


@dataclass
class GateTally:
    """One gate's findings over a round reviewed in parts: counts and what ops are shown (each
    expectation's failing count and its first ids), not every id the gate looked at."""

    gate: str
    evaluated: int = 0
    failed: int = 0
    thresholds: dict[str, Any] = field(default_factory=dict)
    expectations: list[dict[str, Any]] = field(default_factory=list)
    docs_url: str | None = None

    def add(self, outcome: GateOutcome | None) -> None:
        if outcome is not None and outcome.evaluated_ids:
            self.merge(
                GateTally(
                    outcome.gate,
                    len(outcome.evaluated_ids),
                    len(outcome.failures),
                    outcome.thresholds,
                    outcome.expectations,
                    outcome.docs_url,
                )
            )

    def merge(self, other: GateTally) -> None:
        if not other.evaluated:
            return
        # The first failing part's Data Docs are the ones worth opening.
        if self.docs_url is None or (other.failed and not self.failed):
            self.docs_url = other.docs_url
        self.evaluated += other.evaluated
        self.failed += other.failed
        self.thresholds = self.thresholds or other.thresholds
        mine = {e["expectation"]: e for e in self.expectations}
        for e in other.expectations:
            if (same := mine.get(e["expectation"])) is None:
                mine[e["expectation"]] = {**e, "failing_ids": list(e["failing_ids"][:20])}
                self.expectations.append(mine[e["expectation"]])
            else:
                same["success"] = same["success"] and e["success"]
                same["unexpected_count"] += e["unexpected_count"]
                same["failing_ids"] = [*same["failing_ids"], *e["failing_ids"]][:20]


def in_items(column: Any, items: ItemRange) -> ColumnElement[bool]:
    """column (an item id) within the range."""
    after, up_to = items
    condition: ColumnElement[bool] = true()
    if after is not None:
        condition = condition & (column > after)
    if up_to is not None:
        condition = condition & (column <= up_to)
    return condition


def _held(session: Session, batch_id: int, now: dt.datetime | None) -> ColumnElement[bool]:
    """Of the batch's submitted annotations, those the gate leaves for a reviewer for now."""
    project_id = session.scalars(select(Batch.project_id).where(Batch.id == batch_id)).one()
    return awaiting_review(session, project_id, project_body(session, project_id), now or utcnow())


def _round(session: Session, batch_id: int, now: dt.datetime | None = None) -> tuple[ColumnElement[bool], ...]:
    """A batch's annotations submitted and waiting for the submissions gate, less those the gate
    leaves for a reviewer (review.policy.awaiting_review)."""
    held = _held(session, batch_id, now)
    return (Item.batch_id == batch_id, Assignment.status == "submitted", Assignment.role == "annotate", ~held)


def held_for_review(session: Session, batch_id: int, now: dt.datetime | None = None) -> int:
    """The batch's submitted annotations the gate leaves for a reviewer for now."""
    held = _held(session, batch_id, now)
    return (
        session.scalar(
            select(func.count())
            .select_from(Assignment)
            .join(Submission, Submission.assignment_id == Assignment.id)
            .join(Item, Item.id == Assignment.item_id)
            .where(Item.batch_id == batch_id, Assignment.status == "submitted", Assignment.role == "annotate", held)
        )
        or 0
    )


def review_parts(session: Session, batch_id: int, submissions_per_part: int) -> list[ItemRange]:
    """The batch cut by item id into parts of about this many submitted annotations each, so a
    round of any size is reviewed in bounded memory. Every item is in exactly one part (the ends
    are open); a small round is one part, the whole batch."""
    numbered = (
        select(
            Assignment.item_id,
            func.row_number().over(order_by=Assignment.item_id).label("n"),
            func.max(Assignment.item_id).over().label("last_item"),
        )
        .join(Item, Item.id == Assignment.item_id)
        .join(Submission, Submission.assignment_id == Assignment.id)
        .where(*_round(session, batch_id))
        .subquery()
    )
    # No cut at the last item: nothing would follow it (a round of exactly k parts' size was k parts
    # and an empty one).
    bounds = sorted(
        set(
            session.scalars(
                select(numbered.c.item_id).where(
                    numbered.c.n % submissions_per_part == 0, numbered.c.item_id < numbered.c.last_item
                )
            )
        )
    )
    edges: list[int | None] = [None, *bounds, None]
    return list(pairwise(edges))


@without_collection
def round_copies(session: Session, batch_id: int, project: ProjectBody) -> dict[int, str]:
    """pasted_texts over a whole round, for a round gated in parts: a copy between two parts is
    a copy too. Only a hash of each long enough text is kept while the round streams past (16
    bytes per text); the few texts sharing one with another expert's are read and compared as
    pasted_texts compares them."""
    import numpy as np

    names = [label.name for label in project.labels if field_type(label).checked_for_copies]
    if not names:
        return {}
    min_length = project.gates.min_copied_text_length
    hashes, experts, ids = array("q"), array("q"), array("q")
    statement = (
        select(Submission.id, Assignment.expert_id, *(Submission.answer[name].as_string() for name in names))
        .join(Assignment, Assignment.id == Submission.assignment_id)
        .join(Item, Item.id == Assignment.item_id)
        .where(*_round(session, batch_id))
    )
    session.flush()
    streamed = session.connection().execution_options(stream_results=True, yield_per=20_000).execute(statement)
    for submission_id, expert_id, *texts in streamed:
        for text in texts:
            if text and len(text.strip()) >= min_length:
                hashes.append(copy_hash(text))
                experts.append(expert_id)
                ids.append(submission_id)
    if not hashes:
        return {}
    key, expert = np.frombuffer(hashes, dtype=np.int64), np.frombuffer(experts, dtype=np.int64)
    order = np.lexsort((expert, key))
    key, expert = key[order], expert[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    ends = np.r_[starts[1:], len(key)] - 1
    # Sorted by expert within a text: two experts wrote it when its first and last differ.
    shared = np.repeat(expert[starts] != expert[ends], ends - starts + 1)
    candidates = sorted({int(i) for i in np.frombuffer(ids, dtype=np.int64)[order][shared]})
    if not candidates:
        return {}
    rows = [
        {"submission_id": sid, "expert_id": eid, "answer": answer}
        for sid, eid, answer in plain_rows(
            session,
            select(Submission.id, Assignment.expert_id, Submission.answer)
            .join(Assignment, Assignment.id == Submission.assignment_id)
            .where(matches_any(session, Submission.id, candidates)),
        )
    ]
    return pasted_texts(rows, project)


@without_collection
def submissions_to_gate(
    session: Session, batch_id: int, items: ItemRange = WHOLE_BATCH, now: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """Submitted, not yet gated annotations of this batch (of these items), one dict each, with the
    length of the item's content (the time-on-task check scales with what there was to read). The
    gates and the verdicts work from these rows: the batch is read once."""
    rows = plain_rows(
        session,
        select(
            Submission.id,
            Submission.assignment_id,
            Assignment.item_id,
            Assignment.expert_id,
            Submission.time_on_task_seconds,
            Submission.answer,
            func.length(cast(Item.payload, Text)),
        )
        .join(Assignment, Assignment.id == Submission.assignment_id)
        .join(Item, Item.id == Assignment.item_id)
        # In no particular order: nothing downstream depends on it, and sorting a batch's answers
        # spilled to disk.
        .where(*_round(session, batch_id, now), in_items(Item.id, items)),
    ).all()
    return [
        {
            "submission_id": sid,
            "assignment_id": aid,
            "item_id": iid,
            "expert_id": eid,
            "time_on_task_seconds": secs,
            "answer": ans,
            "item_length": length or 0,
        }
        for sid, aid, iid, eid, secs, ans, length in rows
    ]


def copies_among(
    rows: Sequence[Mapping[str, Any]], project: ProjectBody, round_copies: Mapping[int, str] | None = None
) -> dict[int, str]:
    """The exact copies among these rows: found here, or taken from the whole round's (a round
    gated in parts), kept to these rows."""
    if round_copies is None:
        return pasted_texts(rows, project)
    return {int(row["submission_id"]): f for row in rows if (f := round_copies.get(int(row["submission_id"])))}


def add_response_lengths(session: Session, rows: Sequence[dict[str, Any]], project: ProjectBody) -> None:
    """Each row gets its item's model responses' lengths by label (A, B, …) when a field of the
    project points into them (spans): the gate checks its answers lie inside the texts."""
    if not rows or project.generation is None or not any(field_type(lab).needs_responses for lab in project.labels):
        return
    ids = [row["item_id"] for row in rows]
    lengths = lengths_in(session, min(ids), max(ids), [e.name for e in project.generation.endpoints])
    for row in rows:
        row["response_lengths"] = lengths.get(row["item_id"], {})


def add_echoes(session: Session, rows: Sequence[dict[str, Any]], project: ProjectBody) -> None:
    """Each row whose expert's words repeat what its item showed them (review.echoes) gets
    "echoed": which field repeats what; the gate rejects it."""
    shown = shown_texts(session, [row["item_id"] for row in rows], project)
    if not shown:
        return
    flagged = echoed_texts(rows, shown, project)
    for row in rows:
        if (why := flagged.get(row["submission_id"])) is not None:
            row["echoed"] = why


def known_answers(rows: Sequence[Mapping[str, Any]]) -> dict[int, Mapping[str, Any]]:
    """The answers in submissions_to_gate's rows, by submission id: the later stages take them from
    here instead of reading and decoding them again."""
    return {row["submission_id"]: row["answer"] for row in rows}


def record_gate(session: Session, batch_id: int, outcome: GateOutcome) -> int:
    run = GateRun(
        batch_id=batch_id,
        gate=outcome.gate,
        success=outcome.success,
        evaluated=len(outcome.evaluated_ids),
        failed=len(outcome.failures),
        thresholds=outcome.thresholds,
        results=outcome.expectations,
        docs_url=outcome.docs_url,
    )
    session.add(run)
    session.flush()
    return run.id


@without_collection
def apply_submission_gate(session: Session, outcome: GateOutcome, rows: Sequence[Mapping[str, Any]]) -> int:
    """Failing submissions are rejected (their items go back); the rest are accepted. rows: what
    the gate checked (submissions_to_gate). Returns how many failed."""
    evaluated = set(outcome.evaluated_ids)
    accepted: list[int] = []
    by_reason: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        sid = row["submission_id"]
        if sid not in evaluated:
            continue
        why = outcome.failures.get(sid)
        if why is not None:
            by_reason[why].append(row["assignment_id"])
        else:
            accepted.append(row["assignment_id"])
    # By the assignments' own key, only those still awaiting a verdict: a HOT update of each row
    # (see models.Assignment), no join. In key order, so each slice touches its own pages.
    accepted.sort()
    still_submitted = Assignment.status == "submitted"
    update_ids(session, Assignment, accepted, {"status": "accepted", "status_reason": None}, still_submitted)
    for why, ids in by_reason.items():
        update_ids(session, Assignment, ids, {"status": "rejected", "status_reason": why}, still_submitted)
    refresh_statistics(session, len(outcome.evaluated_ids), Assignment)
    return len(outcome.failures)


# The agreement gate: (items with their agreement and unsettled fields, alpha per field, project).
AgreementGate = Callable[[list[dict[str, Any]], dict[str, float | None], ProjectBody], GateOutcome]
