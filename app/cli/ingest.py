"""Commands for bringing work in: ingest a source, and the quarantine of rows it refused."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli.common import JsonFlag, emit, prefect_api, ready_sessions
from nightshift.platform.errors import NightshiftError

quarantine_app = typer.Typer(help="Rows refused at ingest: see, fix and load them.", no_args_is_help=True)


def ingest(
    source: Annotated[str, typer.Argument(help="A file, glob, drop folder or http(s) URL of work items.")],
    project: Annotated[str, typer.Option("--project", "-p", help="Project slug.")],
    file_format: Annotated[
        str, typer.Option("--format", help="auto, jsonl, csv or parquet (auto: from the name).")
    ] = "auto",
    force: Annotated[bool, typer.Option(help="Read files again even if already fully ingested.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Ingest work items into a batch per file; bad rows are quarantined with their reason."""
    api_ready = prefect_api()
    from nightshift.ingest.sources import expand, is_url
    from nightshift.projects.registry import get_project

    if file_format not in ("auto", "jsonl", "csv", "parquet"):
        raise NightshiftError(f"unknown format {file_format!r}: use auto, jsonl, csv or parquet")
    if not is_url(source):
        expand(source)  # a missing file or an empty glob: one line, before anything starts
    with ready_sessions()() as session:
        get_project(session, project)
    # GX loads in the gate's worker while Prefect starts here (both take seconds when cold).
    from tasks.ingest import gate_worker

    gate_worker().warm_in_background()
    from flows.ingest import IngestParams, ingest_flow, progress_listener

    params = IngestParams(project=project, source=source, format=file_format, force=force)  # type: ignore[arg-type]
    with _progress_bar() as listener:
        token = progress_listener.set(listener)
        try:
            with api_ready():
                result = ingest_flow(params)
        finally:
            progress_listener.reset(token)
    lines = []
    for f in result.files:
        state = (
            "skipped: already fully ingested (--force reads it again)"
            if f.skipped
            else ("new" if f.new_batch else "resumed or re-read")
        )
        lines.append(f"{f.source}: batch {f.batch_id} ({state})")
        if not f.skipped:
            lines.append(
                f"  read {f.read}, accepted {f.accepted}, duplicates {f.duplicates}, "
                f"conflicts {f.conflicts}, quarantined {f.quarantined}"
            )
            lines += [f"  quarantined: {reason}: {n}" for reason, n in f.quarantined_by_reason.items()]
            lines += [f"  problem: {p}" for p in f.problems]
            if f.personal_data:
                found = ", ".join(f"{kind} {n}" for kind, n in sorted(f.personal_data.items()))
                lines.append(f"  personal data found: {found}")
    emit(result, as_json, lines)


class _progress_bar:
    """A progress bar on stderr while a file is read, when a person is watching."""

    def __enter__(self) -> Any:
        if not sys.stderr.isatty():
            self._progress = None
            return None
        from rich.console import Console
        from rich.progress import Progress

        self._progress = Progress(console=Console(stderr=True), transient=True)
        self._progress.start()
        self._tasks: dict[str, Any] = {}

        def update(name: str, done: float) -> None:
            assert self._progress is not None
            if name not in self._tasks:
                self._tasks[name] = self._progress.add_task(name, total=100)
            self._progress.update(self._tasks[name], completed=done * 100)

        return update

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


@quarantine_app.command("list")
def quarantine_list(
    batch: Annotated[int | None, typer.Option("--batch", "-b")] = None,
    include_resolved: Annotated[bool, typer.Option("--all", help="Also rows already loaded.")] = False,
    limit: int = 100,
    as_json: JsonFlag = False,
) -> None:
    """Quarantined rows with their reasons."""
    from dataclasses import asdict

    from nightshift.ingest.quarantine import list_quarantined

    with ready_sessions()() as session:
        entries = list_quarantined(session, batch, include_resolved, limit)
    if as_json:
        typer.echo(json.dumps([asdict(e) for e in entries], indent=2))
        return
    for e in entries:
        where = f"{Path(e.source).name}:{e.line_number}"
        typer.echo(f"{e.id:>6}  batch {e.batch_id:<4} {where:<28} {e.external_id or '-':<20} {e.reason}")


@quarantine_app.command("show")
def quarantine_show(row: Annotated[int, typer.Argument(help="Quarantined row id.")]) -> None:
    """One quarantined row: where it came from, why, and the raw row."""
    from nightshift.ingest.quarantine import quarantined_entry
    from nightshift.platform import access
    from nightshift.platform.db import transaction

    with transaction(ready_sessions()) as session:
        entry = quarantined_entry(session, row)
        access.record(
            session,
            "ops",
            access.ops_account(),
            "quarantine_show",
            "cli",
            item_id=entry.resolved_item_id,
            batch_id=entry.batch_id,
            detail={"quarantined_row": entry.id},
        )
        typer.echo(f"row {entry.id}: batch {entry.batch_id}, {entry.source} line {entry.line_number}")
        typer.echo(f"reason: {entry.reason}")
        if entry.resolved_item_id:
            typer.echo(f"loaded as item {entry.resolved_item_id}")
        typer.echo(entry.raw)


@quarantine_app.command("retry")
def quarantine_retry(
    row: Annotated[int, typer.Argument(help="Quarantined row id.")],
    fixed: Annotated[
        str | None, typer.Option("--row", help="The corrected row as a JSON object; default: the row as it was.")
    ] = None,
) -> None:
    """Validate a quarantined row again (as fixed, or as it was after a spec change) and load it."""
    from nightshift.ingest.quarantine import retry
    from nightshift.platform.db import transaction

    with transaction(ready_sessions()) as session:
        item_id = retry(session, row, fixed)
    typer.echo(f"row {row} loaded as item {item_id}")
