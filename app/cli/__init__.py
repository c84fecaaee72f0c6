"""`nightshift …`: a subcommand per stage, each running that stage's Prefect flow.

One module per stage holds its commands (ingest, dispatch, work, review, deliver, payouts, ops,
projects, stack); this module assembles them into the one command line users type.
"""

from __future__ import annotations

from nightshift import resources as root

# Prefect reads its settings when first imported: point it at our state folder before that. Its
# console shows nothing below CRITICAL here: a failure is our one line, and the run's full logs
# (tracebacks included) are in the Prefect API and UI.
root.prepare_process(console_log_level="CRITICAL")

from app.cli import (  # noqa: E402
    acceptance,
    access_log,
    appeals,
    budget,
    deliver,
    dispatch,
    exams,
    generate,
    ingest,
    ops,
    payouts,
    projects,
    retention,
    review,
    stack,
    work,
)
from app.cli.common import app  # noqa: E402
from app.cli.main import main  # noqa: E402

app.add_typer(ingest.quarantine_app, name="quarantine")
app.add_typer(projects.project_app, name="project")
app.add_typer(projects.experts_app, name="experts")
app.add_typer(stack.db_app, name="db")
app.add_typer(stack.limits_app, name="limits")
app.add_typer(payouts.payouts_app, name="payouts")
app.add_typer(budget.budget_app, name="budget")
app.add_typer(retention.retention_app, name="retention")
app.add_typer(access_log.access_app, name="access-log")
app.add_typer(acceptance.acceptance_app, name="acceptance")
app.add_typer(exams.exams_app, name="exams")
app.add_typer(appeals.appeals_app, name="appeals")
app.add_typer(stack.secrets_app, name="secrets")
app.add_typer(projects.clients_app, name="clients")

for command in (
    ingest.ingest,
    generate.generate,
    dispatch.dispatch,
    work.simulate,
    stack.serve,
    stack.stack,
    review.review,
    deliver.deliver,
    deliver.redeliver,
    review.reaggregate,
    review.agreement,
    deliver.deliveries,
    ops.nightly,
    ops.status,
    stack.demo,
    generate.model_server,
):
    app.command()(command)

__all__ = ["app", "main"]
