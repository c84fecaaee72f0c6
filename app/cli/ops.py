"""Commands for operations: the nightly pipeline now, and where every batch stands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import JsonFlag, prefect_api, ready_sessions


def nightly(
    drop_folder: Annotated[Path | None, typer.Option(help="Folder of <project-slug>/*.jsonl files.")] = None,
) -> None:
    """Run the nightly pipeline once, now."""
    api_ready = prefect_api()
    ready_sessions()
    from flows.nightly import NightlyParams, nightly_flow

    with api_ready():
        outcomes = nightly_flow(NightlyParams(drop_folder=str(drop_folder) if drop_folder else None))
    for outcome in outcomes:
        typer.echo(f"batch {outcome['batch_id']}: failed steps {outcome['failed_steps']}")


def status(batch: Annotated[int | None, typer.Option("--batch", "-b")] = None, as_json: JsonFlag = False) -> None:
    """Where every batch stands."""
    from nightshift.reports.status import batch_statuses

    with ready_sessions()() as session:
        rows = batch_statuses(session, [batch] if batch else None)
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in rows], indent=2))
        return
    typer.echo(
        f"{'batch':>5}  {'client':<12} {'project':<20} {'status':<11} {'agree':>5}  {'cost / budget':>20}  "
        f"{'projected finish':<17} {'deadline':<17} items"
    )
    for r in rows:
        items = " ".join(f"{k}={v}" for k, v in sorted(r.items.items()))
        agreement = f"{r.mean_agreement:.2f}" if r.mean_agreement is not None else "-"
        cost = f"${r.cost_so_far_usd}" + (f" / ${r.budget_usd}" if r.budget_usd else "")
        finish = (r.projected_finish or "-")[:16].replace("T", " ")
        deadline = (r.deadline or "-")[:16].replace("T", " ") + (" AT RISK" if r.at_risk else "")
        typer.echo(
            f"{r.batch_id:>5}  {r.client:<12} {r.project:<20} {r.status:<11} {agreement:>5}  {cost:>20}  "
            f"{finish:<17} {deadline:<17} {items}"
        )
