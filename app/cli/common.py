"""What every stage's commands share: the root Typer app, common options, sessions, output."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Annotated, Any

import typer

from nightshift import resources as root
from nightshift.platform.settings import Settings

app = typer.Typer(
    help="Nightshift: human-expert data work for AI training.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
BatchOption = Annotated[int, typer.Option("--batch", "-b", help="Batch id.")]


def settings() -> Settings:
    """The settings as the environment has them now (the composition root reads them)."""
    return root.load_settings()


def prefect_api() -> Callable[[], AbstractContextManager[None]]:
    """For a command that runs a flow, first thing: the Prefect API its runs report to (the configured
    one, else the state folder's local one, started in the background: app.local_prefect). Returns
    what to run the flow in (``with api_ready(): flow(...)``), which waits until that API answers."""
    from app.local_prefect import start

    return start(settings())


def resources() -> root.Resources:
    """The process's one Resources, the flows' and tasks' too (with Prefect's secret resolver)."""
    import tasks.runtime  # noqa: F401  (supplies Prefect's secret resolver to the root)

    return root.current()


def ready_sessions() -> Any:
    """Sessions on a database whose schema is current (else one clear line)."""
    from nightshift.platform.migrate import check_current

    res = resources()
    check_current(res.settings.resolved_database_url)
    return res.sessions


def emit(result: Any, as_json: bool, lines: list[str]) -> None:
    if as_json:
        payload = result.model_dump(mode="json") if hasattr(result, "model_dump") else result
        typer.echo(json.dumps(payload, indent=2, default=str))
    else:
        for line in lines:
            typer.echo(line)


def require_batch(batch_id: int) -> None:
    """One line, before anything starts, for a batch that does not exist."""
    from nightshift.reports.batches import require_batch as check

    with ready_sessions()() as session:
        check(session, batch_id)
