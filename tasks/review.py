from __future__ import annotations

from functools import partial
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from expectations.agreement import check_agreement
from expectations.gold import check_gold
from expectations.submissions import check_submissions
from nightshift import gold, reliability, review
from nightshift.db import transaction
from nightshift.models import Batch
from nightshift.projects import project_spec
from tasks.runtime import DB_TASK, resources


@task(cache_policy=NO_CACHE, **DB_TASK)
def collect_submissions(batch_id: int) -> list[dict[str, Any]]:
    with resources().sessions() as session:
        return review.submissions_to_gate(session, batch_id)


@task(cache_policy=NO_CACHE)
def run_submissions_gate(batch_id: int, rows: list[dict[str, Any]]) -> review.GateOutcome:
    with resources().sessions() as session:
        project = project_spec(session, session.get_one(Batch, batch_id).project_id).project
    return check_submissions(rows, project, resources().settings.resolved_data_docs_dir)


@task(cache_policy=NO_CACHE, **DB_TASK)
def apply_submissions_gate(batch_id: int, outcome: review.GateOutcome) -> int:
    """Record the gate run; failing annotations are rejected, the rest accepted. Returns rejections."""
    if not outcome.evaluated_ids:
        return 0
    with transaction(resources().sessions) as session:
        review.record_gate(session, batch_id, outcome)
        return review.apply_submission_gate(session, outcome)


@task(cache_policy=NO_CACHE, **DB_TASK)
def run_gold_gate(batch_id: int) -> tuple[review.GateOutcome, int]:
    """Judge each expert of the batch on gold; those below the threshold are paused and their work
    in the batch re-queued, in the same transaction as the gate's record. Returns (outcome, items re-queued)."""
    docs = resources().settings.resolved_data_docs_dir
    with transaction(resources().sessions) as session:
        project = project_spec(session, session.get_one(Batch, batch_id).project_id).project
        outcome = check_gold(gold.gold_scores(session, batch_id), project, docs)
        if not outcome.evaluated_ids:
            return outcome, 0
        run_id = review.record_gate(session, batch_id, outcome)
        failing = sorted(outcome.failures)
        requeued = gold.pause_and_requeue(
            session, batch_id, failing, f"gold accuracy below {project.gates.min_gold_accuracy:.0%}", f"gate:{run_id}"
        )
        return outcome, requeued


@task(cache_policy=NO_CACHE, **DB_TASK)
def aggregate_and_settle(batch_id: int) -> review.ReviewReport:
    """Aggregate what is complete and gate its agreement, settle adjudicated items, update
    reliability and the batch's status: one transaction."""
    report = review.ReviewReport()
    gate = partial(check_agreement, docs_dir=resources().settings.resolved_data_docs_dir)
    with transaction(resources().sessions) as session:
        review.aggregate_ready_items(session, batch_id, report, gate)
        # Feedback: what the gates learned about each expert steers the next dispatch.
        reliability.update_reliability(session, reliability.experts_of_batch(session, batch_id))
        report.batch_status = review.settle_batch(session, batch_id)
    return report
