from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from expectations.submissions import check_submissions
from nightshift import reliability, review
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
    return check_submissions(rows, project)


@task(cache_policy=NO_CACHE, **DB_TASK)
def apply_gate_and_aggregate(batch_id: int, outcome: review.GateOutcome) -> review.ReviewReport:
    """Record the gate, send failing work back, aggregate what is complete: one transaction."""
    report = review.ReviewReport(gated=len(outcome.evaluated_ids), failures=outcome.failures)
    with transaction(resources().sessions) as session:
        if outcome.evaluated_ids:
            review.record_gate(session, batch_id, outcome)
            report.rejected = review.apply_submission_gate(session, outcome)
        review.aggregate_ready_items(session, batch_id, report)
        # Feedback: what this gate learned about each expert steers the next dispatch.
        reliability.update_reliability(session, reliability.experts_of_batch(session, batch_id))
        report.batch_status = review.settle_batch(session, batch_id)
    return report
