from __future__ import annotations

from decimal import Decimal

from prefect import task
from prefect.cache_policies import NO_CACHE

from nightshift.payouts import budgets, ledger, periods, statements
from nightshift.platform.db import transaction
from nightshift.platform.models import utcnow
from tasks.runtime import DB_TASK, resources


@task(cache_policy=NO_CACHE, **DB_TASK)
def pay_period(period: periods.Period) -> ledger.PayoutReport:
    """The period's missing ledger entries, in one transaction: all of them or none."""
    with transaction(resources().sessions) as session:
        return ledger.pay_period(session, period, utcnow())


@task(cache_policy=NO_CACHE, **DB_TASK)
def export_payouts_csv(period: periods.Period) -> tuple[str, int, Decimal]:
    with resources().sessions() as session:
        path, payees, total = statements.export_csv(session, period.label, resources().settings.resolved_payouts_dir)
    return str(path), payees, total


@task(cache_policy=NO_CACHE, **DB_TASK)
def raise_budget(
    batch_id: int | None, project: str | None, usd: Decimal | None, hours: Decimal | None, actor: str, reason: str
) -> budgets.Standing:
    with transaction(resources().sessions) as session:
        return budgets.raise_budget(session, batch_id, project, usd, hours, actor, reason)
