"""The entry point: one line for any failure, exit codes as documented."""

from __future__ import annotations

import logging
import os
import sys

import click
import typer

from app.cli.common import app
from nightshift.platform.errors import NightshiftError


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a record arrives, so a CLI run in process (a test,
    the demo) sends its warnings where that run's errors go."""

    def emit(self, record: logging.LogRecord) -> None:
        # Replaced, not setStream(): that flushes the stream an earlier in-process run wrote to,
        # which may be closed by now (a test runner's capture).
        self.stream = sys.stderr
        super().emit(record)


def _plain_warnings() -> None:
    """Our own warnings (Slack not configured, a webhook refused) still reach the terminal, plainly."""
    logger = logging.getLogger("nightshift")
    if any(isinstance(h, _CurrentStderr) for h in logger.handlers):
        return
    handler = _CurrentStderr(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    handler.setLevel(logging.WARNING)
    logger.addHandler(handler)
    logger.propagate = False


def main(argv: list[str] | None = None) -> None:
    """The entry point: one line for any failure, exit codes as documented. argv: the arguments
    (sys.argv's when None), so the CLI can run in process."""
    _plain_warnings()
    try:
        app(args=argv, standalone_mode=False)
    except NightshiftError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("NIGHTSHIFT_DEBUG"):
            raise
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        typer.echo(f"error: {type(exc).__name__}: {first} (NIGHTSHIFT_DEBUG=1 shows the traceback)", err=True)
        sys.exit(1)
