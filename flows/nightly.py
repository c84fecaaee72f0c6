"""The nightly pipeline: pick up dropped files, then advance every open batch one step further.

Each batch is advanced on its own: one client's failure is reported and the others go on.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.artifacts import create_table_artifact
from pydantic import BaseModel, Field

from flows.deliver import DeliverParams, deliver_flow
from flows.dispatch import DispatchParams, dispatch_flow
from flows.hooks import FAILURE_HOOKS
from flows.ingest import IngestParams, ingest_flow
from flows.payouts import PayoutParams, payouts_flow
from flows.review import ReviewParams, review_flow
from nightshift.models import utcnow
from nightshift.payouts import Period
from nightshift.report import batch_statuses, open_batch_ids
from tasks.notify import post_client_digests, send_ops_messages, warn_of_batches_at_risk
from tasks.runtime import resources


class NightlyParams(BaseModel):
    drop_folder: str | None = Field(
        default=None, description="Folder with one sub-folder per project slug holding its files."
    )


@flow(name="nightly", log_prints=True, **FAILURE_HOOKS)
def nightly_flow(params: NightlyParams = NightlyParams()) -> list[dict[str, object]]:
    drop = Path(params.drop_folder) if params.drop_folder else resources().settings.home / "drop"
    for folder in sorted(p for p in drop.iterdir() if p.is_dir()) if drop.is_dir() else []:
        # One sub-folder per project; files already fully ingested are skipped by checksum.
        ingest_flow(IngestParams(project=folder.name, source=str(folder)), return_state=True)

    with resources().sessions() as session:
        batch_ids = open_batch_ids(session)
    outcomes = []
    for batch_id in batch_ids:
        steps = {
            "dispatch": dispatch_flow(DispatchParams(batch_id=batch_id), return_state=True),
            "review": review_flow(ReviewParams(batch_id=batch_id), return_state=True),
            "deliver": deliver_flow(DeliverParams(batch_id=batch_id), return_state=True),
        }
        failed = [name for name, state in steps.items() if not state.is_completed()]
        outcomes.append({"batch_id": batch_id, "failed_steps": ", ".join(failed) or "-"})
    # Retries that came due for batches no longer open (an earlier delivery) go out too.
    deliver_flow(DeliverParams(batch_id=None), return_state=True)
    # What ops should hear: batches that will miss their deadline, each client's digest; then the
    # whole night's messages go out, bursts of one kind grouped into one.
    warn_of_batches_at_risk(None)
    post_client_digests()
    send_ops_messages()
    # Experts see tonight's work on this week's statement; bonuses wait for the weekly run.
    this_week = Period.week_of(utcnow(), resources().settings.payout_timezone)
    payouts_flow(PayoutParams(period=this_week.label, timezone=this_week.timezone), return_state=True)
    with resources().sessions() as session:
        table = [
            s.as_dict() | {"items": str(s.items), "assignments": str(s.assignments)} for s in batch_statuses(session)
        ]
    if table:
        create_table_artifact(key="nightly-status", table=table, description="Every batch after the nightly run")
    return outcomes
