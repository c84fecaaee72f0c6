"""Commands for the access log: who read which item's content, shown or exported for an audit."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import JsonFlag, emit, ready_sessions
from nightshift.platform.errors import NightshiftError

access_app = typer.Typer(help="Who read which item's content (experts, ops, clients), for an audit.")

Since = Annotated[str | None, typer.Option(help="From this UTC date or time (ISO 8601), inclusive.")]
Until = Annotated[str | None, typer.Option(help="Up to this UTC date or time (ISO 8601), exclusive.")]
ItemOpt = Annotated[int | None, typer.Option("--item", help="Only reads of this item (its id).")]
BatchOpt = Annotated[int | None, typer.Option("--batch", "-b", help="Only this batch's.")]
ClientOpt = Annotated[
    str | None,
    typer.Option("--client", "-c", help="Only this client's batches, experts by the aliases its records use."),
]


def _when(value: str | None, what: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise NightshiftError(f"{what}: not an ISO 8601 date or time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _scope(since: str | None, until: str | None, item: int | None, batch: int | None, client: str | None) -> object:
    from nightshift.platform.access import Scope

    return Scope(_when(since, "--since"), _when(until, "--until"), item, batch, client)


@access_app.command("show")
def access_show(
    since: Since = None,
    until: Until = None,
    item: ItemOpt = None,
    batch: BatchOpt = None,
    client: ClientOpt = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many, oldest first.")] = 100,
    as_json: JsonFlag = False,
) -> None:
    """The log's entries, oldest first."""
    from itertools import islice

    from nightshift.platform.access import entries

    with ready_sessions()() as session:
        rows = list(islice(entries(session, _scope(since, until, item, batch, client)), limit))  # type: ignore[arg-type]
    lines = [
        f"{r['at'][:19]} {r['actor_kind']} {r['actor']} {r['action']} via {r['via']}: "
        + (f"item {r['item_id']} ({r['external_id']})" if r["item_id"] else f"batch {r['batch_id']}")
        for r in rows
    ] or ["no entries"]
    emit(rows, as_json, lines)


@access_app.command("export")
def access_export(
    out: Annotated[Path, typer.Option("--out", "-o", help="The CSV file to write.")],
    since: Since = None,
    until: Until = None,
    item: ItemOpt = None,
    batch: BatchOpt = None,
    client: ClientOpt = None,
) -> None:
    """Write the log's entries to a CSV file (at, actor, action, via, batch, item, external id)."""
    from nightshift.platform.access import export_csv

    with ready_sessions()() as session:
        count = export_csv(session, _scope(since, until, item, batch, client), out)  # type: ignore[arg-type]
    typer.echo(f"{count} entries written to {out}")
