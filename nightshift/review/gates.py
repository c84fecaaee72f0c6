"""Review's gates: what a gate found, the submissions it checks, and its verdict recorded and
applied."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Text, cast, func, select
from sqlalchemy.orm import Session

from nightshift.platform.heap import without_collection
from nightshift.platform.models import Assignment, GateRun, Item, Submission
from nightshift.platform.sql import plain_rows, refresh_statistics, update_ids
from nightshift.projects.spec import ProjectBody


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


@without_collection
def submissions_to_gate(session: Session, batch_id: int) -> list[dict[str, Any]]:
    """Submitted, not yet gated annotations of this batch, one dict each, with the length of the
    item's content (the time-on-task check scales with what there was to read). The gates and the
    verdicts work from these rows: the batch is read once."""
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
        .where(Item.batch_id == batch_id, Assignment.status == "submitted", Assignment.role == "annotate"),
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
