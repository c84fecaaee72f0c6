"""A project's review policy: which annotations a review is spent on, which of them the submissions
gate must wait for, and how often an item may go back for rework before an adjudicator decides it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from nightshift.experts.registry import RELIABILITY_PRIOR, holding_all
from nightshift.platform.models import Assignment, Expert, Item, Submission, SubmissionSignal
from nightshift.platform.sql import matches_any
from nightshift.projects.spec import ProjectBody
from nightshift.work.signals import RISK_FLAG

REVIEWER_TIERS = ("reviewer", "adjudicator")
# Knuth's multiplicative hash: consecutive submission ids land far apart, so a sample by id is even.
SAMPLE_HASH = 2654435761


def worth_reviewing(project_id: int, share: float, author: Any) -> ColumnElement[bool]:
    """The project's annotations a review is spent on: every one by a new expert or one whose
    quality is under a new expert's (there a review can change the outcome), every one by an
    expert with a risky submission on record and every risky one (work.signals; the gate finds
    most signals after its verdict, so they call for review of the expert's later work), and a
    fixed sample of `share` of the rest (the submission's id, hashed, picks it: the same one for
    every reviewer)."""
    in_project = Item.project_id == project_id
    if share >= 1:
        return in_project
    sampled = (Submission.id * SAMPLE_HASH) % 1000 < int(share * 1000)
    risky = exists().where(
        SubmissionSignal.submission_id == Submission.id,
        SubmissionSignal.kind == "risk",
        SubmissionSignal.score >= RISK_FLAG,
    )
    return in_project & or_(author.reliability <= RELIABILITY_PRIOR, author.flagged_submissions > 0, sampled, risky)


def reviewers_exist(session: Session, body: ProjectBody) -> bool:
    """Some active reviewer or adjudicator holds every skill the project requires."""
    eligible = select(Expert.id).where(Expert.tier.in_(REVIEWER_TIERS), Expert.status == "active")
    if body.required_skills:
        eligible = eligible.where(Expert.id.in_(holding_all(body.required_skills, body.skill_level)))
    return session.scalar(eligible.limit(1)) is not None


def awaiting_review(session: Session, project_id: int, body: ProjectBody, now: dt.datetime) -> ColumnElement[bool]:
    """A condition on a submitted annotation (its Assignment in the query, and its Submission under
    a policy that waits): the submissions gate leaves it for now.

    Always while a reviewer holds it: a verdict then would turn the reviewer's decision into a
    conflict. And, under a policy that waits for reviews (review_wait_hours), while the policy
    picks it, nobody has claimed it yet, it was submitted less than that long ago and some
    reviewer could take it: past the wait, or with no reviewer at all, the gate goes on without
    one rather than hold the batch."""
    review = aliased(Assignment)
    # Open reviews are few (the open-work index finds them): a small set, hashed once per query.
    under_review = (
        select(Submission.assignment_id)
        .join(review, review.subject_submission_id == Submission.id)
        .where(review.open_expert_id.is_not(None), review.role == "review")
    )
    held = Assignment.id.in_(under_review)
    if not body.review or not body.review_wait_hours or not reviewers_exist(session, body):
        return held
    claimed = exists().where(review.subject_submission_id == Submission.id)
    author = aliased(Expert)
    picked = (
        select(author.id)
        .where(author.id == Assignment.expert_id, worth_reviewing(project_id, body.review_share, author))
        .exists()
    )
    waiting = picked & ~claimed & (Assignment.submitted_at > now - dt.timedelta(hours=body.review_wait_hours))
    return held | waiting


def rework_spent(session: Session, item_ids: list[int], rounds: int) -> set[int]:
    """Those of these items whose annotations were rejected `rounds` times or more (by the
    submissions gate, a reviewer, or a pause): another rework round would likely go the same way."""
    if not item_ids:
        return set()
    return set(
        session.scalars(
            select(Assignment.item_id)
            .where(
                matches_any(session, Assignment.item_id, item_ids),
                Assignment.role == "annotate",
                Assignment.status == "rejected",
            )
            .group_by(Assignment.item_id)
            .having(func.count() >= rounds)
        )
    )


def spent_rounds(rounds: int) -> str:
    """Why an item went to an adjudicator instead of another rework round."""
    return f"annotations rejected {rounds} times (the project's rework_rounds)"
