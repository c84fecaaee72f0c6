"""An expert's own quality as the workbench shows it to them: accuracy on gold, agreement with
final answers, per project and per week; the reviews of their work with the reviewers' comments;
gold answers they missed; each with whether it can still be appealed. Nobody else is named."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightshift.platform.models import (
    Appeal,
    Assignment,
    Expert,
    GoldAnswer,
    Item,
    ItemResult,
    Project,
    Review,
    Submission,
    as_utc,
)
from nightshift.platform.sql import plain_rows
from nightshift.projects.registry import project_spec
from nightshift.review.reliability import Matcher, gather_evidence, matcher, not_purged

# Rows shown per list; the figures count everything.
SHOWN = 50


@dataclass
class Tally:
    gold_seen: int = 0
    gold_right: int = 0
    agreement_seen: int = 0
    agreed: int = 0

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_right / self.gold_seen if self.gold_seen else None

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.agreement_seen if self.agreement_seen else None


@dataclass
class OwnQuality:
    reliability: float
    overall: Tally
    exams_seen: int
    exams_right: int
    by_project: dict[str, Tally] = field(default_factory=dict)
    by_week: dict[str, Tally] = field(default_factory=dict)
    reviews: dict[str, int] = field(default_factory=dict)
    corrections: list[dict[str, Any]] = field(default_factory=list)
    gold_misses: list[dict[str, Any]] = field(default_factory=list)


def own_quality(session: Session, expert_id: int) -> OwnQuality:
    reliability = session.scalar(select(Expert.reliability).where(Expert.id == expert_id)) or 0.0
    evidence = gather_evidence(session, [expert_id])[expert_id]
    mine = OwnQuality(round(reliability, 3), Tally(), evidence.exam_seen, evidence.exam_right)
    appeals = {
        submission_id: (appeal_id, status, note)
        for submission_id, appeal_id, status, note in session.execute(
            select(Appeal.submission_id, Appeal.id, Appeal.status, Appeal.decision_note).where(
                Appeal.expert_id == expert_id
            )
        )
    }
    judges: dict[int, Matcher] = {}
    rows = plain_rows(
        session,
        select(
            Project.id,
            Project.name,
            Submission.id,
            Assignment.submitted_at,
            Submission.answer,
            GoldAnswer.answer,
            ItemResult.answer,
        )
        .join(Assignment, Assignment.id == Submission.assignment_id)
        .join(Item, Item.id == Assignment.item_id)
        .join(Project, Project.id == Item.project_id)
        .outerjoin(GoldAnswer, GoldAnswer.item_id == Item.id)
        .outerjoin(ItemResult, ItemResult.item_id == Item.id)
        .where(
            Assignment.expert_id == expert_id,
            Assignment.role.in_(("annotate", "adjudicate")),
            Assignment.status.in_(("accepted", "rejected")),
            # A purged batch's answers are hashes: no evidence, nothing to appeal (as in reliability).
            not_purged(),
        )
        .order_by(Assignment.submitted_at.desc()),
    ).all()
    by_project: dict[str, Tally] = defaultdict(Tally)
    by_week: dict[str, Tally] = defaultdict(Tally)
    for project_id, project_name, submission_id, submitted_at, answer, gold, final in rows:
        if project_id not in judges:
            judges[project_id] = matcher(project_spec(session, project_id).project)
        upheld = appeals.get(submission_id, (None, None, None))[1] == "upheld"
        week = _week(submitted_at)
        tallies = (mine.overall, by_project[project_name], by_week[week])
        if gold is not None:
            right = upheld or judges[project_id](answer, gold)
            for tally in tallies:
                tally.gold_seen += 1
                tally.gold_right += right
            if not right and len(mine.gold_misses) < SHOWN:
                appeal = appeals.get(submission_id)
                mine.gold_misses.append(
                    {
                        "submission_id": submission_id,
                        "project": project_name,
                        "submitted_at": submitted_at,
                        "answer": answer,
                        "appeal": _appeal_state(appeal),
                    }
                )
        elif final is not None:
            agreed = upheld or judges[project_id](answer, final)
            for tally in tallies:
                tally.agreement_seen += 1
                tally.agreed += agreed
    mine.by_project = dict(sorted(by_project.items()))
    mine.by_week = dict(sorted(by_week.items(), reverse=True))
    _reviews(session, expert_id, mine, appeals)
    return mine


def _week(moment: dt.datetime | None) -> str:
    if moment is None:
        return "-"
    year, week, _ = as_utc(moment).isocalendar()
    return f"{year}-W{week:02d}"


def _appeal_state(appeal: tuple[int, str, str | None] | None) -> dict[str, Any] | None:
    if appeal is None:
        return None
    appeal_id, status, note = appeal
    return {"id": appeal_id, "status": status, "note": note}


def _reviews(
    session: Session, expert_id: int, mine: OwnQuality, appeals: dict[int, tuple[int, str, str | None]]
) -> None:
    """Every verdict on the expert's annotations counted; rejections and corrections listed with
    the reviewer's comment (the reviewer is not named)."""
    rows = session.execute(
        select(
            Review.decision,
            Review.reason,
            Review.corrected_answer,
            Review.created_at,
            Submission.id,
            Submission.answer,
            Project.name,
        )
        .join(Submission, Submission.id == Review.submission_id)
        .join(Assignment, Assignment.id == Submission.assignment_id)
        .join(Item, Item.id == Assignment.item_id)
        .join(Project, Project.id == Item.project_id)
        .where(
            Assignment.expert_id == expert_id,
            not_purged(),
        )
        .order_by(Review.created_at.desc(), Review.id.desc())
    )
    counts: dict[str, int] = defaultdict(int)
    for decision, reason, corrected, created_at, submission_id, answer, project_name in rows:
        counts[decision] += 1
        if decision == "approve" or len(mine.corrections) >= SHOWN:
            continue
        mine.corrections.append(
            {
                "submission_id": submission_id,
                "project": project_name,
                "decision": decision,
                "comment": reason,
                "answer": answer,
                "corrected": corrected,
                "at": created_at,
                "appeal": _appeal_state(appeals.get(submission_id)),
            }
        )
    mine.reviews = dict(counts)
