"""Pay experts for a period: ledger entries for time, deductions and bonuses, then the payments file."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, Field

from flows.hooks import FAILURE_HOOKS
from nightshift.payouts.periods import Period
from nightshift.platform.models import utcnow
from tasks.payouts import export_payouts_csv, pay_period
from tasks.runtime import resources


class PayoutParams(BaseModel):
    period: str | None = Field(
        default=None,
        description="An ISO week (2026-W47) or a month (2026-11); empty means the last complete week.",
        pattern=r"^\d{4}-(W\d{2}|\d{2})$",
    )
    timezone: str | None = Field(
        default=None, description="Payroll time zone (IANA name); empty means NIGHTSHIFT_PAYOUT_TIMEZONE."
    )


class PayoutResult(BaseModel):
    period: str
    timezone: str
    closed: bool
    time_entries: int
    deductions: int
    bonuses: int
    refunds: int = 0
    paid_now: str
    period_total: str
    payees: int
    csv_path: str
    notes: list[str]


@flow(name="payouts", log_prints=True, **FAILURE_HOOKS)
def payouts_flow(params: PayoutParams = PayoutParams()) -> PayoutResult:
    timezone = params.timezone or resources().settings.payout_timezone
    period = Period.parse(params.period, timezone) if params.period else Period.last_complete_week(utcnow(), timezone)
    report = pay_period(period)
    csv_path, payees, total = export_payouts_csv(period)
    create_markdown_artifact(
        key="payouts",
        markdown="\n".join(
            [
                f"# Payouts {period.label} ({timezone})",
                f"- new entries: {report.time_entries} time, {report.deductions} deductions, "
                f"{report.bonuses} bonuses, {report.refunds} appeal refunds",
                f"- paid by this run: ${report.paid_now}",
                f"- period total: ${total} to {payees} experts",
                f"- payments file: `{csv_path}`",
                *(f"- {note}" for note in report.notes),
            ]
        ),
        description=f"Payouts for {period.label}",
    )
    return PayoutResult(
        period=period.label,
        timezone=timezone,
        closed=report.closed,
        time_entries=report.time_entries,
        deductions=report.deductions,
        bonuses=report.bonuses,
        refunds=report.refunds,
        paid_now=str(report.paid_now),
        period_total=str(total),
        payees=payees,
        csv_path=csv_path,
        notes=report.notes,
    )
