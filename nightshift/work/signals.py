"""Signals on a submission: signs of low effort or copying, each with its strength (0-1) and its
evidence (counts and ids, never the expert's words), and the risk they add up to.

Signals come from the workbench as the answer is sent (pastes, typing: work.telemetry) and from
the submissions gate over a round (rushing, echoes, copies, near-duplicates, identical answer
sequences: review.round_signals). A submission's risk is 1 - prod(1 - weight * score) over its
signals: one strong sign or several weak ones. It feeds the quality model (review.reliability:
a risky submission counts against its expert like a missed deadline) and review sampling
(review.policy: a risky submission is always worth a reviewer's look).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from nightshift.platform.models import Assignment, Expert, Submission, SubmissionSignal
from nightshift.platform.sql import insert_ignoring_conflicts, is_postgres, matches_any

# A submission at or above this risk is flagged: reviewed whatever the sample, and counted
# against its expert's quality.
RISK_FLAG = 0.5
# How much each kind of signal says about effort, at full strength. An echo or an exact copy is
# certain; a paste may be the expert's own notes; rushing may be a fast expert.
WEIGHTS = {
    "pasted": 0.7,
    "rushed": 0.6,
    "echo": 1.0,
    "copy": 1.0,
    "near_duplicate": 0.8,
    "same_sequence": 0.7,
}


@dataclass(frozen=True)
class Signal:
    submission_id: int
    kind: str
    score: float
    evidence: dict[str, Any] = field(default_factory=dict)


def combined_risk(scores: Mapping[str, float]) -> float:
    keep = 1.0
    for kind, score in scores.items():
        keep *= 1 - WEIGHTS.get(kind, 0.0) * min(max(score, 0.0), 1.0)
    return round(1 - keep, 4)


def record(session: Session, signals: Sequence[Signal]) -> int:
    """Keep these signals (a signal already found on a submission stays as first found) and
    recompute the risk of every submission they touch. Returns how many were new."""
    if not signals:
        return 0
    rows = [
        {"submission_id": s.submission_id, "kind": s.kind, "score": round(float(s.score), 4), "evidence": s.evidence}
        for s in signals
    ]
    new = 0
    for start in range(0, len(rows), 2_000):
        new += insert_ignoring_conflicts(
            session, SubmissionSignal, rows[start : start + 2_000], ["submission_id", "kind"]
        )
    ids = sorted({s.submission_id for s in signals})
    scores: dict[int, dict[str, float]] = defaultdict(dict)
    for start in range(0, len(ids), 10_000):
        part = ids[start : start + 10_000]
        for submission_id, kind, score in session.execute(
            select(SubmissionSignal.submission_id, SubmissionSignal.kind, SubmissionSignal.score).where(
                matches_any(session, SubmissionSignal.submission_id, part), SubmissionSignal.kind != "risk"
            )
        ):
            scores[submission_id][kind] = score
    risks = [
        {
            "submission_id": submission_id,
            "kind": "risk",
            "score": combined_risk(found),
            "evidence": {"signals": {k: round(v, 4) for k, v in sorted(found.items())}},
        }
        for submission_id, found in scores.items()
    ]
    insert = postgresql.insert if is_postgres(session) else sqlite.insert
    for start in range(0, len(risks), 2_000):
        stmt = insert(SubmissionSignal).values(risks[start : start + 2_000])
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["submission_id", "kind"],
                set_={"score": stmt.excluded.score, "evidence": stmt.excluded.evidence},
            )
        )
    _count_flagged(session, ids)
    return new


def _count_flagged(session: Session, submission_ids: list[int]) -> None:
    """Recount the risky submissions of these submissions' experts, set-based."""
    experts: set[int] = set()
    for start in range(0, len(submission_ids), 10_000):
        part = submission_ids[start : start + 10_000]
        experts.update(
            session.scalars(
                select(Assignment.expert_id)
                .join(Submission, Submission.assignment_id == Assignment.id)
                .where(matches_any(session, Submission.id, part))
            )
        )
    flagged = (
        select(func.count())
        .select_from(SubmissionSignal)
        .join(Submission, Submission.id == SubmissionSignal.submission_id)
        .join(Assignment, Assignment.id == Submission.assignment_id)
        .where(
            Assignment.expert_id == Expert.id,
            SubmissionSignal.kind == "risk",
            SubmissionSignal.score >= RISK_FLAG,
        )
        .scalar_subquery()
    )
    ids = sorted(experts)
    for start in range(0, len(ids), 10_000):
        session.execute(
            update(Expert)
            .where(matches_any(session, Expert.id, ids[start : start + 10_000]))
            .values(flagged_submissions=flagged)
            .execution_options(synchronize_session=False)
        )


def signals_of(session: Session, submission_id: int) -> dict[str, tuple[float, dict[str, Any]]]:
    """A submission's signals, kind -> (score, evidence), its risk among them."""
    return {
        kind: (score, evidence)
        for kind, score, evidence in session.execute(
            select(SubmissionSignal.kind, SubmissionSignal.score, SubmissionSignal.evidence).where(
                SubmissionSignal.submission_id == submission_id
            )
        )
    }
