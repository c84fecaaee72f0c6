"""Commands for expert pay: run a period, read a statement, add a correction."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from app.cli.common import JsonFlag, emit, prefect_api, ready_sessions, settings

payouts_app = typer.Typer(help="Expert pay: run a period, statements, corrections.")


PeriodOption = Annotated[
    str | None, typer.Option("--period", help="ISO week (2026-W47) or month (2026-11); default: last complete week.")
]
TimezoneOption = Annotated[
    str | None, typer.Option("--tz", help="Payroll time zone (IANA); default NIGHTSHIFT_PAYOUT_TIMEZONE.")
]


def _period(period: str | None, tz: str | None) -> Any:
    from nightshift.payouts.periods import Period
    from nightshift.platform.models import utcnow

    zone = tz or settings().payout_timezone
    return Period.parse(period, zone) if period else Period.last_complete_week(utcnow(), zone)


@payouts_app.callback(invoke_without_command=True)
def payouts(
    ctx: typer.Context, period: PeriodOption = None, tz: TimezoneOption = None, as_json: JsonFlag = False
) -> None:
    """Pay a period: ledger entries for time, deductions and bonuses, then the payments CSV."""
    if ctx.invoked_subcommand:
        return
    api_ready = prefect_api()
    chosen = _period(period, tz)
    ready_sessions()
    from flows.payouts import PayoutParams, payouts_flow

    with api_ready():
        result = payouts_flow(PayoutParams(period=chosen.label, timezone=chosen.timezone))
    emit(
        result,
        as_json,
        [
            f"period {result.period} ({result.timezone}){'' if result.closed else ', still open'}",
            f"new entries: {result.time_entries} time, {result.deductions} deductions, {result.bonuses} bonuses, "
            f"{result.refunds} appeal refunds; "
            f"paid now ${result.paid_now}",
            f"period total ${result.period_total} to {result.payees} experts: {result.csv_path}",
            *result.notes,
        ],
    )


@payouts_app.command("statement")
def payouts_statement(
    handle: str, period: PeriodOption = None, tz: TimezoneOption = None, as_json: JsonFlag = False
) -> None:
    """One expert's statement for a period, line by line."""
    from nightshift.payouts.statements import statement

    chosen = _period(period, tz)
    with ready_sessions()() as session:
        result = statement(session, handle, chosen.label)
    emit(
        result.as_dict(),
        as_json,
        [
            f"{result.expert}, {result.period}: {result.currency} {result.total}",
            *(
                f"  {line['kind']:<10} {line['project']:<16} {line['minutes']:>7} min x {line['rate']:>7}/h"
                f" = {line['amount']:>9}  {line['note'] or ''}"
                for line in result.lines
            ),
            "  " + ", ".join(f"{kind} {amount}" for kind, amount in result.totals.items()),
        ],
    )


@payouts_app.command("correct")
def payouts_correct(
    handle: str,
    project: Annotated[str, typer.Option("--project", "-p", help="Project slug.")],
    amount: Annotated[str, typer.Option(help="Signed amount in whole cents, e.g. -12.50.")],
    reason: Annotated[str, typer.Option(help="Why: shown on the expert's statement.")],
    reference: Annotated[str, typer.Option("--ref", help="Ticket or case id; asking twice adds nothing.")],
    period: PeriodOption = None,
    tz: TimezoneOption = None,
) -> None:
    """Add a correction to the ledger (entries are never edited)."""
    from nightshift.payouts.corrections import correct, parse_amount
    from nightshift.platform.db import transaction

    value = parse_amount(amount)
    chosen = _period(period, tz)
    with transaction(ready_sessions()) as session:
        added = correct(session, handle, project, value, reason, reference, chosen)
    typer.echo(f"correction {reference}: {'added' if added else 'already in the ledger'}")
