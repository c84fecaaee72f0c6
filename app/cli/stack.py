"""Commands for the platform itself: the database, the service's keys, concurrency limits, the
web service, the local stack and the demo."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli.common import ready_sessions, settings
from nightshift.platform.errors import NightshiftError

db_app = typer.Typer(help="The application database.", no_args_is_help=True)
limits_app = typer.Typer(
    help="Prefect concurrency limits (database, client webhooks, Slack, dispatch) the tasks hold to.",
    no_args_is_help=True,
)
secrets_app = typer.Typer(help="The service's own keys.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the newest version."""
    from nightshift.platform.migrate import upgrade

    upgrade(settings().resolved_database_url)
    typer.echo("database schema is current")


@secrets_app.command("rotate-pseudonym-key")
def secrets_rotate_pseudonym_key() -> None:
    """A new key for experts' pseudonyms: from now on every expert has new, unlinkable pseudonyms
    in deliveries and reviews. With NIGHTSHIFT_PSEUDONYM_KEY set, change that instead."""
    from nightshift.platform import pseudonyms

    current = settings()
    if current.pseudonym_key is not None:
        raise NightshiftError("the pseudonym key comes from NIGHTSHIFT_PSEUDONYM_KEY: set a new value there")
    pseudonyms.write_new_key(pseudonyms.key_file(current))
    typer.echo(f"new pseudonym key written to {pseudonyms.key_file(current)}")


@limits_app.command("apply")
def limits_apply() -> None:
    """Create the concurrency limits on the Prefect API, or set them back to their sizes (idempotent)."""
    from deployments.limits import apply_limits

    for tag, slots in apply_limits().items():
        typer.echo(f"{tag}: {slots}")


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """The web service: expert workbench pages, the expert API and the client API (docs at /docs)."""
    import uvicorn

    from app import balanced_workers
    from app.web import KEEP_ALIVE_SECONDS

    ready_sessions()
    # No access log: it would be noise at hundreds of requests a second, and paths carry no secrets.
    serving: dict[str, Any] = {
        "factory": True,
        "host": host,
        "port": port,
        "workers": workers,
        "access_log": False,
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
    }
    if workers > 1 and balanced_workers.balanced():
        # Each worker on a socket of its own, so connections spread evenly across them.
        balanced_workers.run(uvicorn.Config("app.web:app_from_environment", **serving))
    else:
        uvicorn.run("app.web:app_from_environment", **serving)


def stack(
    port: Annotated[int, typer.Option(help="Prefect server (API and UI) port.")] = 4200,
    workers: Annotated[int, typer.Option(min=1, help="Prefect workers on the nightshift pool.")] = 1,
    worker_limit: Annotated[int, typer.Option(min=1, help="Flow runs each worker runs at once.")] = 4,
    poll_seconds: Annotated[
        float, typer.Option(min=0.5, help="How often a worker asks the server for runs (Prefect's default: 10).")
    ] = 10.0,
    web_port: Annotated[int, typer.Option(help="Web service port.")] = 8000,
    web: Annotated[bool, typer.Option(help="Start the web service (workbench, expert and client APIs).")] = True,
    schedules: Annotated[
        bool, typer.Option(help="Let deployment schedules start runs (off: only what you trigger runs).")
    ] = True,
) -> None:
    """The local stack: Prefect server and UI, limits, work pool, deployments, workers, web service.
    Ctrl-C, SIGTERM or SIGHUP stop every process it started."""
    from deployments.stack import LocalStack, stop_on_termination
    from nightshift.platform.migrate import upgrade

    stop_on_termination()
    local = LocalStack(
        home=settings().home.resolve(),
        port=port,
        workers=workers,
        worker_limit=worker_limit,
        web_port=web_port if web else None,
        worker_poll_seconds=poll_seconds,
        schedules=schedules,
    )
    # One command for the whole stack: the schema is created or migrated first, as `db upgrade` does.
    upgrade(settings().resolved_database_url)
    with local:
        typer.echo(f"Prefect UI   http://127.0.0.1:{port}")
        if web:
            typer.echo(f"web service  http://127.0.0.1:{web_port}")
        typer.echo(f"{workers} worker(s) on pool 'nightshift'; logs in {local.logs}; Ctrl-C stops everything")
        try:
            while not (crashed := local.exited()):
                time.sleep(1)
        except KeyboardInterrupt:
            crashed = []
        if crashed:
            raise NightshiftError(f"{', '.join(crashed)} stopped; see {local.logs}")


def demo(
    items: Annotated[Path | None, typer.Option(help="Items JSONL (default: bundled sample).")] = None,
) -> None:
    """Run the whole pipeline on bundled sample data with an embedded database and a local receiver."""
    from app.demo import run_demo

    run_demo(items)
