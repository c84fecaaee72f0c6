"""Commands for appeals: experts' disputes of reviews and gold answers, and gold items they overturned."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import JsonFlag, emit, ready_sessions

appeals_app = typer.Typer(help="Experts' appeals against reviews and gold answers.")


@appeals_app.command("list")
def appeals_list(
    status: Annotated[str | None, typer.Option("--status", help="open, upheld or rejected.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Every appeal (experts by id), oldest first."""
    from nightshift.platform.errors import NightshiftError
    from nightshift.platform.models import APPEAL_STATUSES
    from nightshift.review import appeals

    if status is not None and status not in APPEAL_STATUSES:
        raise NightshiftError(f"--status: one of {', '.join(APPEAL_STATUSES)}")
    with ready_sessions()() as session:
        found = appeals.appeals_table(session, status)
    lines = [
        f"appeal {a['appeal']}: {a['kind']}, {a['status']}, by expert {a['expert_id']}"
        + (f", decided by expert {a['decided_by']}" if a["decided_by"] else "")
        + (", gold answer corrected" if a["gold_corrected"] else "")
        for a in found
    ]
    emit(found, as_json, lines or ["no appeals"])


@appeals_app.command("flagged")
def appeals_flagged(as_json: JsonFlag = False) -> None:
    """Gold items whose answer was overturned on appeal several times: their answer key needs a look."""
    from nightshift.review import appeals

    with ready_sessions()() as session:
        found = appeals.flagged_gold(session)
    lines = [
        f"item {g['item_id']} ({g['project']}, {g['external_id']}): {g['upheld_appeals']} appeals upheld" for g in found
    ]
    emit(found, as_json, lines or ["no gold item is flagged"])
