"""The nightly pipeline: pick up dropped files, then advance every open batch one step further.

Each batch is advanced in its own flow run: one client's failure is reported and the others go on.
Run as a deployment, those runs are submitted to the work pool, so every worker shares the night.
"""

from __future__ import annotations

import time
from pathlib import Path
from uuid import UUID

from prefect import flow, get_client
from prefect.artifacts import create_table_artifact
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.runtime import deployment
from prefect.states import State
from pydantic import BaseModel, Field

from flows.advance import AdvanceParams, advance_batch_flow
from flows.deliver import DeliverParams, deliver_flow
from flows.hooks import FAILURE_HOOKS, failure_summary
from flows.ingest import IngestParams, ingest_flow
from flows.payouts import PayoutParams, payouts_flow
from nightshift.payouts.periods import Period
from nightshift.platform.models import utcnow
from nightshift.reports.batches import open_batches, status_table
from nightshift.reports.exams import exam_table
from tasks.deliver import close_acceptance_windows
from tasks.notify import post_client_digests, send_ops_messages, warn_of_batches_at_risk
from tasks.runtime import resources

ADVANCE_DEPLOYMENT = "advance-batch/advance-batch"


class NightlyParams(BaseModel):
    drop_folder: str | None = Field(
        default=None, description="Folder with one sub-folder per project slug holding its files."
    )
    batch_timeout_minutes: int = Field(
        default=240, ge=1, description="How long to wait for the batches' runs on the work pool before reporting them."
    )


def _advance_on_the_work_pool(batch_ids: list[int], timeout_minutes: int) -> dict[int, State | None]:
    """One advance-batch run per batch, submitted at once so every worker can take some; delivery
    is left to the event its review emits. None for a run still going at the timeout."""
    submitted: dict[UUID, int] = {}
    for batch_id in batch_ids:
        run = run_deployment(
            ADVANCE_DEPLOYMENT,
            parameters={"params": AdvanceParams(batch_id=batch_id, delivery="on-event").model_dump()},
            timeout=0,
        )
        submitted[run.id] = batch_id
    deadline = time.monotonic() + timeout_minutes * 60
    final: dict[int, State | None] = dict.fromkeys(batch_ids)
    with get_client(sync_client=True) as client:
        waiting = set(submitted)
        while waiting and time.monotonic() < deadline:
            runs: list[FlowRun] = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=waiting)))
            for run in runs:
                if run.state is not None and run.state.is_final():
                    final[submitted[run.id]] = run.state
                    waiting.discard(run.id)
            if waiting:
                time.sleep(2)
    return final


def _advance_here(batch_ids: list[int]) -> dict[int, State | None]:
    return {batch_id: advance_batch_flow(AdvanceParams(batch_id=batch_id), return_state=True) for batch_id in batch_ids}


@flow(name="nightly", log_prints=True, **FAILURE_HOOKS)
def nightly_flow(params: NightlyParams = NightlyParams()) -> list[dict[str, object]]:
    drop = Path(params.drop_folder) if params.drop_folder else resources().settings.home / "drop"
    for folder in sorted(p for p in drop.iterdir() if p.is_dir()) if drop.is_dir() else []:
        # One sub-folder per project; files already fully ingested are skipped by checksum.
        ingest_flow(IngestParams(project=folder.name, source=str(folder)), return_state=True)

    batch_ids = open_batches(resources().sessions)
    deployed = deployment.id is not None
    states = (
        _advance_on_the_work_pool(batch_ids, params.batch_timeout_minutes) if deployed else _advance_here(batch_ids)
    )
    outcomes: list[dict[str, object]] = [
        {
            "batch_id": batch_id,
            "advance": state.type.value if state else "still running",
            "why": failure_summary(state) if state and not state.is_completed() else "",
        }
        for batch_id, state in states.items()
    ]
    # Retries that came due for batches no longer open (an earlier delivery) go out too.
    deliver_flow(DeliverParams(batch_id=None), return_state=True)
    # Delivered records the client did not reject within their project's window are accepted.
    closing = close_acceptance_windows(return_state=True)
    if closing.is_completed():
        for batch_id, accepted in closing.result().items():
            print(f"batch {batch_id}: acceptance window closed, {accepted} records accepted")
    else:
        # The rest of the night goes on; the next run closes what this one could not.
        print(f"closing acceptance windows did not finish ({closing.type.value}); the next run tries again")
    # What ops should hear: batches that will miss their deadline, each client's digest; then the
    # whole night's messages go out, bursts of one kind grouped into one.
    warn_of_batches_at_risk(None)
    post_client_digests()
    send_ops_messages()
    # Experts see tonight's work on this week's statement; bonuses wait for the weekly run.
    this_week = Period.week_of(utcnow(), resources().settings.payout_timezone)
    payouts_flow(PayoutParams(period=this_week.label, timezone=this_week.timezone), return_state=True)
    table = status_table(resources().sessions)
    if table:
        create_table_artifact(key="nightly-status", table=table, description="Every batch after the nightly run")
    exams = exam_table(resources().sessions)
    if exams:
        create_table_artifact(key="exam-pass-rates", table=exams, description="Exams' pass rates, items' hit rates")
    return outcomes
