"""Commands for acceptance: clients' verdicts on delivered records, per batch and per project."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import JsonFlag, emit, ready_sessions
from nightshift.platform.errors import NightshiftError

acceptance_app = typer.Typer(help="Clients' verdicts on delivered records: windows, rates, per expert.")


@acceptance_app.command("show")
def acceptance_show(
    batch: Annotated[int | None, typer.Option("--batch", "-b", help="The batch's latest version.")] = None,
    project: Annotated[str | None, typer.Option("--project", "-p", help="Or the project's rates.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """A batch's verdicts and window, or a project's acceptance rate overall and per expert."""
    from sqlalchemy import select

    from nightshift.delivery import acceptance
    from nightshift.platform.models import Batch, Project

    if (batch is None) == (project is None):
        raise NightshiftError("name a batch or a project")
    with ready_sessions()() as session:
        if batch is not None:
            if session.get(Batch, batch) is None:
                raise NightshiftError(f"batch {batch} not found")
            found = acceptance.summary(session, batch)
            if found["version"] is None:
                lines = [f"batch {batch}: no acceptance window (none in its project, or not delivered)"]
            else:
                lines = [
                    f"batch {batch} v{found['version']}: {found['accepted']} accepted, {found['rejected']} "
                    f"rejected, {found['undecided']} undecided; window ends {found['window_ends_at'][:16]} UTC"
                ]
            emit(found, as_json, lines)
            return
        project_id = session.scalar(select(Project.id).where(Project.slug == project))
        if project_id is None:
            raise NightshiftError(f"unknown project {project}")
        rates = acceptance.rates(session, project_id)
    rate = rates["acceptance_rate"]
    lines = [
        f"project {project}: {rates['accepted']} accepted, {rates['rejected']} rejected"
        + (f" ({rate:.1%} accepted)" if rate is not None else "")
    ] + [
        f"  expert {expert_id}: {e['records']} records judged, {e['rejected']} rejected ({e['acceptance_rate']:.1%})"
        for expert_id, e in rates["experts"].items()
    ]
    emit(rates, as_json, lines)
