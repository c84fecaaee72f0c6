"""Budgets on real flow runs: dispatch stops at a batch's hard limit and says so, ops hear at 80%
and when it is used up, and a raise from the CLI staffs what was held back."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from app.cli import app
from flows.dispatch import DispatchParams, dispatch_flow
from nightshift.payouts.budgets import standings
from nightshift.platform.models import AuditLog, BudgetLimit, Item
from nightshift.projects.spec import Budget
from tests.flows.test_ops_notifications import _project

LIMIT = Decimal("2000")


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def _pending(sessions, batch_id: int) -> int:
    with sessions() as session:
        return session.scalar(
            select(func.count()).select_from(Item).where(Item.batch_id == batch_id, Item.status == "pending")
        )


def test_a_batch_stops_at_its_hard_budget_and_resumes_after_a_raise(app_env, prefect_api, slack) -> None:
    sessions, batch_id = _project(app_env, budget=Budget(per_batch=LIMIT))
    first = dispatch_flow(DispatchParams(batch_id=batch_id))
    assert first.assignments > 0 and first.budget_held > 0
    assert first.budget_stop and first.budget_stop.startswith(f"batch {batch_id}: $")
    # Nothing is committed past the limit: the open work's expected cost (its gold included) fits.
    with sessions() as session:
        batch_budget, project_budget = standings(session, batch_id)
    assert Decimal("0.8") * LIMIT <= batch_budget.usd_used <= LIMIT
    assert not project_budget.limited
    assert _pending(sessions, batch_id) == first.budget_held
    texts = [m["text"] for m in slack.messages]
    assert any(t.startswith(f"The budget of batch {batch_id} is at 80%") for t in texts)
    [used_up] = [t for t in texts if t.startswith(f"The budget of batch {batch_id} is used up")]
    assert f"Items waiting for budget: {first.budget_held}" in used_up

    # Dispatching again staffs nothing, and ops are not told twice.
    # Dispatching again stays under the limit (which experts are in their working hours decides
    # whether a cheaper team fits one more item), and ops are not told twice.
    again = dispatch_flow(DispatchParams(batch_id=batch_id))
    with sessions() as session:
        assert standings(session, batch_id)[0].usd_used <= LIMIT
    assert 0 < again.budget_held <= first.budget_held
    assert len([m for m in slack.messages if "used up" in m["text"]]) == 1

    shown = json.loads(_cli("budget", "show", "--batch", str(batch_id), "--json"))
    assert shown[0]["usd_limit"] == "2000" and shown[0]["alerts"] == [80]

    out = _cli(
        "budget", "raise", "--batch", str(batch_id), "--usd", "60000", "--reason", "the client approved the full batch"
    )
    assert "0 items still wait for budget" in out
    assert _pending(sessions, batch_id) == 0
    with sessions() as session:
        raised = session.scalars(select(BudgetLimit)).one()
        assert (raised.batch_id, raised.usd, raised.actor) == (batch_id, Decimal("60000.00"), "cli")
        audit = session.scalars(select(AuditLog).where(AuditLog.entity == "batch_budget")).one()
        assert audit.detail and audit.detail["reason"] == "the client approved the full batch"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--usd", "100"], "name a batch or a project"),
        (["--batch", "1", "--project", "acme-scenarios", "--usd", "1"], "name a batch or a project"),
        (["--batch", "1"], "give a limit"),
        (["--batch", "1", "--usd", "lots"], "--usd: not a number"),
        (["--batch", "1", "--usd", "-5"], "--usd: a number from 0"),
        (["--batch", "1", "--hours", "nan"], "--hours: a number from 0"),
    ],
)
def test_a_raise_that_cannot_be_taken_is_one_line_and_changes_nothing(capsys, args, error) -> None:
    # Refused before anything is opened: no database, no Prefect run.
    from app.cli.main import main

    with pytest.raises(SystemExit) as exited:
        main(["budget", "raise", "--reason", "why not", *args])
    assert exited.value.code == 1
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 1 and error in said[0], said


def test_a_projects_hours_budget_stops_dispatch_and_a_raise_of_it_lets_the_next_one_go_on(app_env, prefect_api) -> None:
    sessions, batch_id = _project(app_env, budget=Budget(project_hours=Decimal("10")))
    first = dispatch_flow(DispatchParams(batch_id=batch_id))
    assert first.budget_held > 0
    assert first.budget_stop and first.budget_stop.startswith("project acme-scenarios: ")
    assert "of 10.0 expert hours" in first.budget_stop
    with sessions() as session:
        _, project_budget = standings(session, batch_id)
    assert project_budget.hours_used <= Decimal("10")

    out = _cli("budget", "raise", "--project", "acme-scenarios", "--hours", "1000", "--reason", "a bigger contract")
    assert out.startswith("budget now: project acme-scenarios:")
    assert dispatch_flow(DispatchParams(batch_id=batch_id)).budget_held == 0
    assert _pending(sessions, batch_id) == 0
