"""Corrections as operators ask for them: an amount as typed, an expert's handle, a project's slug."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from sqlalchemy.orm import Session

from nightshift.payouts.ledger import add_correction
from nightshift.payouts.periods import Period
from nightshift.payouts.statements import expert_id_of
from nightshift.platform.errors import NightshiftError
from nightshift.projects.clients import project_id_by_slug


def parse_amount(text: str) -> Decimal:
    """A signed amount as typed (-12.50), or one line saying it is not a number."""
    try:
        return Decimal(text)
    except InvalidOperation:
        raise NightshiftError(f"amount {text!r} is not a number") from None


def correct(
    session: Session, handle: str, project: str, amount: Decimal, reason: str, reference: str, period: Period
) -> bool:
    """Add a correction for the expert and project named; False when its reference is already in the ledger."""
    project_id = project_id_by_slug(session, project)
    return add_correction(session, expert_id_of(session, handle), project_id, amount, reason, reference, period)
