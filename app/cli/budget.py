"""Commands for budgets: where a batch's and its project's budgets stand, and raising one."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer

from app.cli.common import BatchOption, JsonFlag, emit, prefect_api, ready_sessions, require_batch
from nightshift.platform.errors import NightshiftError

budget_app = typer.Typer(help="Budgets in USD and expert hours: where they stand, and raising them.")


def _amount(value: str | None, what: str) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise NightshiftError(f"{what}: not a number") from None
    if not amount.is_finite() or amount < 0 or amount >= Decimal("1e11"):
        raise NightshiftError(f"{what}: a number from 0 up to 100 billion")
    return amount


@budget_app.command("show")
def budget_show(batch: BatchOption, as_json: JsonFlag = False) -> None:
    """The batch's budget and its project's: limits, spent and committed, alerts reached."""
    from nightshift.payouts.budgets import standings

    require_batch(batch)
    with ready_sessions()() as session:
        found = standings(session, batch)
    rows = [
        {
            "scope": s.scope,
            "usd_limit": str(s.usd_limit) if s.usd_limit is not None else None,
            "hours_limit": str(s.hours_limit) if s.hours_limit is not None else None,
            "usd_used": str(round(s.usd_used, 2)),
            "hours_used": str(round(s.hours_used, 1)),
            "alerts": s.crossed(),
        }
        for s in found
    ]
    emit(
        rows,
        as_json,
        [s.describe() if s.limited else f"{s.scope}: no limit (${s.usd_used:,.2f} so far)" for s in found],
    )


@budget_app.command("raise")
def budget_raise(
    reason: Annotated[str, typer.Option(help="Why: kept with the limit and in the audit log.")],
    batch: Annotated[int | None, typer.Option("--batch", "-b", help="The batch whose budget changes.")] = None,
    project: Annotated[str | None, typer.Option("--project", "-p", help="Or the project (slug).")] = None,
    usd: Annotated[str | None, typer.Option(help="The new limit in USD.")] = None,
    hours: Annotated[str | None, typer.Option(help="The new limit in expert hours.")] = None,
    dispatch_now: Annotated[bool, typer.Option(help="Staff the batch's waiting items at once.")] = True,
    as_json: JsonFlag = False,
) -> None:
    """Set a new limit (what is not given stays), then staff what the old one held back."""
    from pydantic import ValidationError

    from flows.budget import RaiseBudgetParams, raise_budget_flow

    try:
        params = RaiseBudgetParams(
            batch_id=batch,
            project=project,
            usd=_amount(usd, "--usd"),
            hours=_amount(hours, "--hours"),
            reason=reason,
            dispatch_now=dispatch_now,
            requested_by="cli",
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise NightshiftError(f"{where + ': ' if where else ''}{error['msg']}") from None
    api_ready = prefect_api()
    if batch is not None:
        require_batch(batch)
    with api_ready():
        result = raise_budget_flow(params)
    lines = [f"budget now: {result.budget}"]
    if batch is not None and dispatch_now:
        lines.append(f"staffed {result.assignments} assignments; {result.still_held} items still wait for budget")
    emit(result, as_json, lines)
