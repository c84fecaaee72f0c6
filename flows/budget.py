"""Raise a budget: a batch's or a project's limit in dollars or expert hours, then staff what it
was holding back."""

from __future__ import annotations

from decimal import Decimal

from prefect import flow
from pydantic import BaseModel, Field, model_validator

from flows.dispatch import DispatchParams, dispatch_flow
from flows.hooks import FAILURE_HOOKS
from tasks.payouts import raise_budget


class RaiseBudgetParams(BaseModel):
    batch_id: int | None = Field(default=None, ge=1, description="The batch whose budget changes.")
    project: str | None = Field(
        default=None, max_length=64, description="Or the project (its slug) whose whole budget changes."
    )
    usd: Decimal | None = Field(default=None, ge=0, lt=Decimal("1e11"), description="The new limit in USD.")
    hours: Decimal | None = Field(default=None, ge=0, lt=Decimal("1e11"), description="The new limit in expert hours.")
    reason: str = Field(min_length=1, max_length=500, description="Why: kept with the limit and in the audit log.")
    dispatch_now: bool = Field(default=True, description="Staff the batch's waiting items at once (a batch only).")
    requested_by: str = Field(
        default="ops",
        min_length=1,
        max_length=100,
        description="Who raises it: kept with the limit and in the audit log.",
    )

    @model_validator(mode="after")
    def _one_scope(self) -> RaiseBudgetParams:
        if (self.batch_id is None) == (self.project is None):
            raise ValueError("name a batch or a project, not both")
        if self.usd is None and self.hours is None:
            raise ValueError("give a limit in USD, in hours, or both")
        return self


class RaiseBudgetResult(BaseModel):
    budget: str
    assignments: int = 0
    still_held: int = 0


@flow(name="raise-budget", log_prints=True, **FAILURE_HOOKS)
def raise_budget_flow(params: RaiseBudgetParams) -> RaiseBudgetResult:
    standing = raise_budget(
        params.batch_id, params.project, params.usd, params.hours, params.requested_by, params.reason
    )
    print(f"budget now: {standing.describe()}")
    if params.batch_id is None or not params.dispatch_now:
        return RaiseBudgetResult(budget=standing.describe())
    staffed = dispatch_flow(DispatchParams(batch_id=params.batch_id))
    return RaiseBudgetResult(
        budget=standing.describe(), assignments=staffed.assignments, still_held=staffed.budget_held
    )
