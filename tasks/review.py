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
from nightshift.review import gates, rounds, settle
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
def apply_submissions_gate(batch_id: int, submissions: gates.GateOutcome, rows: list[dict[str, Any]]) -> int:
    """Record the submissions gate and write its verdicts: failing annotations rejected, the rest
    accepted. rows: what the gate checked. Returns how many were rejected."""
    if not submissions.evaluated_ids:
        return 0
    with transaction(resources().sessions) as session:
        gates.record_gate(session, batch_id, submissions)
        return gates.apply_submission_gate(session, submissions, rows)


@task(cache_policy=NO_CACHE, **DB_TASK)
def settle_round(batch_id: int, rows: list[dict[str, Any]]) -> settle.ReviewReport:
    """Aggregate what is complete and gate its agreement, judge the batch's experts on the quality
    gate (pausing and sending back), update reliability and the batch's status: one transaction.
    rows: what the submissions gate read, whose answers are not read again."""
    docs = resources().settings.resolved_data_docs_dir
    with transaction(resources().sessions) as session:
        return rounds.settle_round(
            session,
            batch_id,
            partial(check_agreement, docs_dir=docs),
            partial(check_gold, docs_dir=docs),
            "gate",
            gates.known_answers(rows),
        )


@task(cache_policy=NO_CACHE, **DB_TASK)
def expert_quality(batch_id: int) -> list[dict[str, Any]]:
    """The quality model's view of the batch's experts, flat rows for the run's table artifact."""
    with resources().sessions() as session:
        rows = quality_table(session, batch_id)
    return [row | {"interval_90": "{:.3f}-{:.3f}".format(*row["interval_90"])} for row in rows]
