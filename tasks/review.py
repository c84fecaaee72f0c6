from __future__ import annotations

from functools import partial
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from expectations.agreement import check_agreement
from expectations.gold import check_gold
from expectations.submissions import check_submissions
from nightshift.platform.db import transaction
from nightshift.platform.models import Batch
from nightshift.projects.registry import project_spec
from nightshift.reports.experts import quality_table
from nightshift.review import gates, gold, reliability, settle
from tasks.runtime import DB_TASK, resources


@task(cache_policy=NO_CACHE, **DB_TASK)
def collect_submissions(batch_id: int) -> list[dict[str, Any]]:
    with resources().sessions() as session:
        return gates.submissions_to_gate(session, batch_id)


@task(cache_policy=NO_CACHE)
def run_submissions_gate(batch_id: int, rows: list[dict[str, Any]]) -> gates.GateOutcome:
    with resources().sessions() as session:
        project = project_spec(session, session.get_one(Batch, batch_id).project_id).project
    return check_submissions(rows, project, resources().settings.resolved_data_docs_dir)


@task(cache_policy=NO_CACHE, **DB_TASK)
def apply_submissions_and_gold_gates(
    batch_id: int, submissions: gates.GateOutcome, rows: list[dict[str, Any]]
) -> tuple[int, gates.GateOutcome, int]:
    """Record the submissions gate, judge each expert of the batch on gold (this gate's annotations
    counted), then write every verdict once: failing annotations rejected, the rest accepted, and
    the work in the batch of experts below the gold threshold re-queued, those experts paused. One
    transaction. rows: what the submissions gate checked. Returns (annotations rejected, the gold
    gate's outcome, items re-queued)."""
    docs = resources().settings.resolved_data_docs_dir
    with transaction(resources().sessions) as session:
        project = project_spec(session, session.get_one(Batch, batch_id).project_id).project
        if submissions.evaluated_ids:
            gates.record_gate(session, batch_id, submissions)
        outcome = check_gold(gold.gold_scores(session, batch_id, submissions, rows), project, docs)
        failing = sorted(outcome.failures)
        rejected = gates.apply_submission_gate(session, submissions, rows, held_back=failing)
        if not outcome.evaluated_ids:
            return rejected, outcome, 0
        run_id = gates.record_gate(session, batch_id, outcome)
        reason = f"accuracy very probably under {project.gates.min_gold_accuracy:.0%} (gold and agreement)"
        requeued = gold.pause_and_requeue(session, batch_id, failing, reason, f"gate:{run_id}")
        return rejected, outcome, requeued


@task(cache_policy=NO_CACHE, **DB_TASK)
def aggregate_and_settle(batch_id: int, rows: list[dict[str, Any]]) -> settle.ReviewReport:
    """Aggregate what is complete and gate its agreement, settle adjudicated items, update
    reliability and the batch's status: one transaction. rows: what the submissions gate read,
    whose answers are not read again."""
    report = settle.ReviewReport()
    gate = partial(check_agreement, docs_dir=resources().settings.resolved_data_docs_dir)
    known = gates.known_answers(rows)
    with transaction(resources().sessions) as session:
        settle.aggregate_ready_items(session, batch_id, report, gate, known)
        # Feedback: what the gates learned about each expert steers the next dispatch.
        reliability.update_reliability(session, reliability.experts_of_batch(session, batch_id), known)
        report.batch_status = settle.settle_batch(session, batch_id)
    return report


@task(cache_policy=NO_CACHE, **DB_TASK)
def expert_quality(batch_id: int) -> list[dict[str, Any]]:
    """The quality model's view of the batch's experts, flat rows for the run's table artifact."""
    with resources().sessions() as session:
        rows = quality_table(session, batch_id)
    return [row | {"interval_90": "{:.3f}-{:.3f}".format(*row["interval_90"])} for row in rows]
