"""Commands for retention: which delivered batches are past their client's period, and purging them."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import JsonFlag, emit, prefect_api

retention_app = typer.Typer(help="Purge delivered content past each client's retention period.")


@retention_app.command("purge")
def retention_purge(
    client: Annotated[str | None, typer.Option("--client", "-c", help="Only this client's batches.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what is due; purge nothing.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Purge every delivered batch whose last delivery is older than its client's retention_days."""
    from flows.retention import PurgeParams, purge_flow

    with prefect_api()():
        result = purge_flow(PurgeParams(client=client, dry_run=dry_run, requested_by="cli"))
    verb = "due" if dry_run else "purged"
    lines = [
        f"batch {b.batch_id} ({b.client}): last delivered {b.last_delivered_at[:10]}, "
        f"kept {b.retention_days} days: {verb}"
        + (f" ({sum(b.rows.values())} rows, {b.folders} folders)" if not dry_run else "")
        for b in result.batches
    ] or [f"no batch is {verb}"]
    emit(result, as_json, lines)
