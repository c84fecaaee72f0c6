from __future__ import annotations

from functools import partial
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from expectations.agreement import check_agreement
from expectations.gold import check_gold
from expectations.project_agreement import check_project_agreement
from expectations.submissions import check_submissions
from nightshift.platform.db import transaction
from nightshift.platform.models import Batch
from nightshift.projects.registry import batch_body, project_body
from nightshift.reports.experts import quality_table
from nightshift.review import gates, rounds, settle
from nightshift.review.project_agreement import project_agreement
from tasks.runtime import DB_TASK, resources

# Experts in a review's quality table: a pool of a big batch is more than anyone reads.
QUALITY_ROWS = 1_000


@task(cache_policy=NO_CACHE, **DB_TASK)
def review_parts(batch_id: int) -> list[gates.ItemRange]:
    """The round's parts by item (one for a round of up to NIGHTSHIFT_REVIEW_PART_SUBMISSIONS)."""
    with resources().sessions() as session:
        return gates.review_parts(session, batch_id, resources().settings.review_part_submissions)


@task(cache_policy=NO_CACHE, persist_result=False, **DB_TASK)
def round_copies(batch_id: int) -> dict[int, str]:
    """Copied free text across the whole round, for a round reviewed in parts."""
    with resources().sessions() as session:
        project = batch_body(session, batch_id)
        return gates.round_copies(session, batch_id, project)


@task(cache_policy=NO_CACHE, persist_result=False, **DB_TASK)
def review_part(batch_id: int, items: gates.ItemRange, copies: dict[int, str] | None) -> rounds.PartReview:
    """One part of the round (review.rounds.review_part): its submissions read once and gated, then
    its complete items aggregated and their agreement gated. Returns counts and what ops are
    shown, not the part's rows."""
    docs = resources().settings.resolved_data_docs_dir
    return rounds.review_part(
        resources().sessions,
        batch_id,
        items,
        copies,
        partial(check_submissions, docs_dir=docs),
        partial(check_agreement, docs_dir=docs),
    )


@task(cache_policy=NO_CACHE, persist_result=False, **DB_TASK)
def settle_experts(batch_id: int) -> tuple[settle.ReviewReport, list[dict[str, Any]]]:
    """The round's experts judged on the quality gate (pausing and sending back), reliability
    updated, the batch's status moved on: one transaction, once the round's items are aggregated.
    Also the quality model's view of them, from the same evidence: the QUALITY_ROWS least sure of
    first, flat rows for the run's table artifact."""
    docs = resources().settings.resolved_data_docs_dir
    with transaction(resources().sessions) as session:
        report = rounds.settle_experts(session, batch_id, partial(check_gold, docs_dir=docs), "gate")
        report.awaiting_review = gates.held_for_review(session, batch_id)
        rows = quality_table(session, batch_id, report.evidence, limit=QUALITY_ROWS)
    report.evidence = None
    return report, [row | {"interval_90": "{:.3f}-{:.3f}".format(*row["interval_90"])} for row in rows]


@task(cache_policy=NO_CACHE, **DB_TASK)
def project_agreement_gate(batch_id: int) -> gates.GateOutcome:
    """Alpha per field over the project's recent batches, this one included, against the spec's
    gates.min_project_alpha; recorded against the batch when the spec sets a floor."""
    docs = resources().settings.resolved_data_docs_dir
    with transaction(resources().sessions) as session:
        project_id = session.get_one(Batch, batch_id).project_id
        project = project_body(session, project_id)
        if project.gates.min_project_alpha is None:
            # No floor, no gate: the report (nightshift agreement) reads it when asked.
            return gates.GateOutcome("project-agreement", [], {}, {"min_project_alpha": None}, [])
        found = project_agreement(session, project_id)
        outcome = check_project_agreement(batch_id, found, project, docs)
        if outcome.evaluated_ids:
            gates.record_gate(session, batch_id, outcome)
    return outcome
