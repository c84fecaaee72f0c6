"""`nightshift …`: a subcommand per stage, each running that stage's Prefect flow."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import click
import typer

from nightshift.platform.errors import NightshiftError
from nightshift.platform.settings import Settings

# Prefect reads its settings when first imported: point it at our state folder before that. Its
# console shows nothing below CRITICAL here: a failure is our one line, and the run's full logs
# (tracebacks included) are in the Prefect API and UI.
Settings().prepare_process_environment(console_log_level="CRITICAL")

app = typer.Typer(
    help="Nightshift: human-expert data work for AI training.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
project_app = typer.Typer(help="Client projects.", no_args_is_help=True)
experts_app = typer.Typer(help="The expert registry.", no_args_is_help=True)
db_app = typer.Typer(help="The application database.", no_args_is_help=True)
limits_app = typer.Typer(
    help="Prefect concurrency limits (database, client webhooks, Slack, dispatch) the tasks hold to.",
    no_args_is_help=True,
)
quarantine_app = typer.Typer(help="Rows refused at ingest: see, fix and load them.", no_args_is_help=True)
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(project_app, name="project")
app.add_typer(experts_app, name="experts")
app.add_typer(db_app, name="db")
app.add_typer(limits_app, name="limits")
payouts_app = typer.Typer(help="Expert pay: run a period, statements, corrections.")
app.add_typer(payouts_app, name="payouts")
clients_app = typer.Typer(help="Clients' webhook endpoints and their signing secrets.", no_args_is_help=True)
secrets_app = typer.Typer(help="The service's own keys.", no_args_is_help=True)
app.add_typer(secrets_app, name="secrets")
app.add_typer(clients_app, name="clients")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
BatchOption = Annotated[int, typer.Option("--batch", "-b", help="Batch id.")]


def _settings() -> Settings:
    return Settings()


def _ready_sessions() -> Any:
    """Sessions on a database whose schema is current (else one clear line)."""
    from nightshift.platform.db import make_engine, make_sessionmaker
    from nightshift.platform.migrate import check_current

    url = _settings().resolved_database_url
    check_current(url)
    return make_sessionmaker(make_engine(url))


def _emit(result: Any, as_json: bool, lines: list[str]) -> None:
    if as_json:
        payload = result.model_dump(mode="json") if hasattr(result, "model_dump") else result
        typer.echo(json.dumps(payload, indent=2, default=str))
    else:
        for line in lines:
            typer.echo(line)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the newest version."""
    from nightshift.platform.migrate import upgrade

    upgrade(_settings().resolved_database_url)
    typer.echo("database schema is current")


@secrets_app.command("rotate-pseudonym-key")
def secrets_rotate_pseudonym_key() -> None:
    """A new key for experts' pseudonyms: from now on every expert has new, unlinkable pseudonyms
    in deliveries and reviews. With NIGHTSHIFT_PSEUDONYM_KEY set, change that instead."""
    from nightshift.platform import pseudonyms

    settings = _settings()
    if settings.pseudonym_key is not None:
        raise NightshiftError("the pseudonym key comes from NIGHTSHIFT_PSEUDONYM_KEY: set a new value there")
    pseudonyms.write_new_key(pseudonyms.key_file(settings))
    typer.echo(f"new pseudonym key written to {pseudonyms.key_file(settings)}")


@project_app.command("apply")
def project_apply(file: Annotated[Path, typer.Argument(help="Project spec YAML.")]) -> None:
    """Create or update a client and project from a spec file."""
    from nightshift.delivery.endpoints import check_webhook_url
    from nightshift.platform.db import transaction
    from nightshift.projects.registry import apply_spec
    from nightshift.projects.spec import load_spec

    spec = load_spec(file)
    if spec.client.webhook_url:
        # Refused now, in one line, rather than at the first send; every send checks it again.
        check_webhook_url(spec.client.webhook_url, _settings().webhook_http_allowlist)
    with transaction(_ready_sessions()) as session:
        applied = apply_spec(session, spec)
    state = "changed" if applied.changed else "unchanged"
    where = f"project {applied.project_slug} (client {applied.client_slug})"
    typer.echo(f"{where}: spec v{applied.spec_version}, {state}")


@limits_app.command("apply")
def limits_apply() -> None:
    """Create the concurrency limits on the Prefect API, or set them back to their sizes (idempotent)."""
    from deployments.limits import apply_limits

    for tag, slots in apply_limits().items():
        typer.echo(f"{tag}: {slots}")


@experts_app.command("import")
def experts_import(file: Annotated[Path, typer.Argument(help="Experts as CSV or JSONL.")]) -> None:
    """Add or update experts; bad rows are listed and nothing is written if any row is bad."""
    from nightshift.experts.registry import import_experts, parse_experts
    from nightshift.platform.db import transaction

    rows, errors = parse_experts(file)
    if errors:
        for error in errors[:50]:
            typer.echo(error, err=True)
        raise NightshiftError(f"{len(errors)} bad rows in {file}: nothing imported")
    with transaction(_ready_sessions()) as session:
        created = import_experts(session, rows)
    typer.echo(f"{len(rows)} experts imported ({created} new)")


@experts_app.command("set-status")
def experts_set_status(handle: str, status: Annotated[str, typer.Argument(help="active, paused or banned")]) -> None:
    """Pause, ban or reactivate an expert."""
    from nightshift.experts.registry import set_status
    from nightshift.platform.db import transaction

    if status not in ("active", "paused", "banned"):
        raise NightshiftError("status must be active, paused or banned")
    with transaction(_ready_sessions()) as session:
        set_status(session, handle, status, "cli")  # type: ignore[arg-type]
    typer.echo(f"{handle}: {status}")


@experts_app.command("show")
def experts_show(handle: str, as_json: JsonFlag = False) -> None:
    """An expert's skills, languages, reliability (gold, agreement, misses) and work history."""
    from nightshift.reports.experts import expert_profile

    with _ready_sessions()() as session:
        profile = expert_profile(session, handle)
    gold, agreement = profile["gold"], profile["agreement"]
    _emit(
        profile,
        as_json,
        [
            f"{profile['handle']} ({profile['tier']}, {profile['status']}), {profile['timezone']}, {profile['window']}",
            f"skills {', '.join(profile['skills'])}; languages {', '.join(profile['languages'])}; "
            f"capacity {profile['capacity']}",
            f"reliability {profile['reliability']:.3f} (prior {profile['reliability_prior']}): "
            f"gold {gold['correct']}/{gold['answered']}, agreement {agreement['agreed']}/{agreement['answered']}, "
            f"{profile['missed_deadlines']} missed deadlines",
            "assignments: " + (", ".join(f"{k} {n}" for k, n in sorted(profile["assignments"].items())) or "none"),
            *(f"{h['at']}: {h['from']} -> {h['to']} by {h['by']}" for h in profile["status_history"]),
        ],
    )


PeriodOption = Annotated[
    str | None, typer.Option("--period", help="ISO week (2026-W47) or month (2026-11); default: last complete week.")
]
TimezoneOption = Annotated[
    str | None, typer.Option("--tz", help="Payroll time zone (IANA); default NIGHTSHIFT_PAYOUT_TIMEZONE.")
]


def _period(period: str | None, tz: str | None) -> Any:
    from nightshift.payouts.periods import Period
    from nightshift.platform.models import utcnow

    zone = tz or _settings().payout_timezone
    return Period.parse(period, zone) if period else Period.last_complete_week(utcnow(), zone)


@payouts_app.callback(invoke_without_command=True)
def payouts(
    ctx: typer.Context, period: PeriodOption = None, tz: TimezoneOption = None, as_json: JsonFlag = False
) -> None:
    """Pay a period: ledger entries for time, deductions and bonuses, then the payments CSV."""
    if ctx.invoked_subcommand:
        return
    chosen = _period(period, tz)
    _ready_sessions()
    from flows.payouts import PayoutParams, payouts_flow

    result = payouts_flow(PayoutParams(period=chosen.label, timezone=chosen.timezone))
    _emit(
        result,
        as_json,
        [
            f"period {result.period} ({result.timezone}){'' if result.closed else ', still open'}",
            f"new entries: {result.time_entries} time, {result.deductions} deductions, {result.bonuses} bonuses; "
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
    with _ready_sessions()() as session:
        result = statement(session, handle, chosen.label)
    _emit(
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
    from decimal import Decimal, InvalidOperation

    from sqlalchemy import select

    from nightshift.payouts.ledger import add_correction
    from nightshift.payouts.statements import expert_id_of
    from nightshift.platform.db import transaction
    from nightshift.platform.models import Project

    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise NightshiftError(f"amount {amount!r} is not a number") from None
    chosen = _period(period, tz)
    with transaction(_ready_sessions()) as session:
        project_id = session.scalar(select(Project.id).where(Project.slug == project))
        if project_id is None:
            raise NightshiftError(f"no project {project!r}")
        added = add_correction(session, expert_id_of(session, handle), project_id, value, reason, reference, chosen)
    typer.echo(f"correction {reference}: {'added' if added else 'already in the ledger'}")


@app.command()
def ingest(
    source: Annotated[str, typer.Argument(help="A file, glob, drop folder or http(s) URL of work items.")],
    project: Annotated[str, typer.Option("--project", "-p", help="Project slug.")],
    file_format: Annotated[
        str, typer.Option("--format", help="auto, jsonl, csv or parquet (auto: from the name).")
    ] = "auto",
    force: Annotated[bool, typer.Option(help="Read files again even if already fully ingested.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Ingest work items into a batch per file; bad rows are quarantined with their reason."""
    from nightshift.ingest.sources import expand, is_url
    from nightshift.projects.registry import get_project

    if file_format not in ("auto", "jsonl", "csv", "parquet"):
        raise NightshiftError(f"unknown format {file_format!r}: use auto, jsonl, csv or parquet")
    if not is_url(source):
        expand(source)  # a missing file or an empty glob: one line, before anything starts
    with _ready_sessions()() as session:
        get_project(session, project)
    from flows.ingest import IngestParams, ingest_flow, progress_listener

    params = IngestParams(project=project, source=source, format=file_format, force=force)  # type: ignore[arg-type]
    with _progress_bar() as listener:
        token = progress_listener.set(listener)
        try:
            result = ingest_flow(params)
        finally:
            progress_listener.reset(token)
    lines = []
    for f in result.files:
        state = (
            "skipped: already fully ingested (--force reads it again)"
            if f.skipped
            else ("new" if f.new_batch else "resumed or re-read")
        )
        lines.append(f"{f.source}: batch {f.batch_id} ({state})")
        if not f.skipped:
            lines.append(
                f"  read {f.read}, accepted {f.accepted}, duplicates {f.duplicates}, "
                f"conflicts {f.conflicts}, quarantined {f.quarantined}"
            )
            lines += [f"  quarantined: {reason}: {n}" for reason, n in f.quarantined_by_reason.items()]
            lines += [f"  problem: {p}" for p in f.problems]
    _emit(result, as_json, lines)


class _progress_bar:
    """A progress bar on stderr while a file is read, when a person is watching."""

    def __enter__(self) -> Any:
        if not sys.stderr.isatty():
            self._progress = None
            return None
        from rich.console import Console
        from rich.progress import Progress

        self._progress = Progress(console=Console(stderr=True), transient=True)
        self._progress.start()
        self._tasks: dict[str, Any] = {}

        def update(name: str, done: float) -> None:
            assert self._progress is not None
            if name not in self._tasks:
                self._tasks[name] = self._progress.add_task(name, total=100)
            self._progress.update(self._tasks[name], completed=done * 100)

        return update

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


@quarantine_app.command("list")
def quarantine_list(
    batch: Annotated[int | None, typer.Option("--batch", "-b")] = None,
    include_resolved: Annotated[bool, typer.Option("--all", help="Also rows already loaded.")] = False,
    limit: int = 100,
    as_json: JsonFlag = False,
) -> None:
    """Quarantined rows with their reasons."""
    from dataclasses import asdict

    from nightshift.ingest.quarantine import list_quarantined

    with _ready_sessions()() as session:
        entries = list_quarantined(session, batch, include_resolved, limit)
    if as_json:
        typer.echo(json.dumps([asdict(e) for e in entries], indent=2))
        return
    for e in entries:
        where = f"{Path(e.source).name}:{e.line_number}"
        typer.echo(f"{e.id:>6}  batch {e.batch_id:<4} {where:<28} {e.external_id or '-':<20} {e.reason}")


@quarantine_app.command("show")
def quarantine_show(row: Annotated[int, typer.Argument(help="Quarantined row id.")]) -> None:
    """One quarantined row: where it came from, why, and the raw row."""
    from nightshift.platform.models import QuarantinedRow

    with _ready_sessions()() as session:
        entry = session.get(QuarantinedRow, row)
        if entry is None:
            raise NightshiftError(f"unknown quarantined row {row}")
        typer.echo(f"row {entry.id}: batch {entry.batch_id}, {entry.source} line {entry.line_number}")
        typer.echo(f"reason: {entry.reason}")
        if entry.resolved_item_id:
            typer.echo(f"loaded as item {entry.resolved_item_id}")
        typer.echo(entry.raw)


@quarantine_app.command("retry")
def quarantine_retry(
    row: Annotated[int, typer.Argument(help="Quarantined row id.")],
    fixed: Annotated[
        str | None, typer.Option("--row", help="The corrected row as a JSON object; default: the row as it was.")
    ] = None,
) -> None:
    """Validate a quarantined row again (as fixed, or as it was after a spec change) and load it."""
    from nightshift.ingest.quarantine import retry
    from nightshift.platform.db import transaction

    with transaction(_ready_sessions()) as session:
        item_id = retry(session, row, fixed)
    typer.echo(f"row {row} loaded as item {item_id}")


def _require_batch(batch_id: int) -> None:
    from nightshift.platform.models import Batch

    with _ready_sessions()() as session:
        if session.get(Batch, batch_id) is None:
            raise NightshiftError(f"unknown batch {batch_id}")


@app.command()
def dispatch(batch: BatchOption, as_json: JsonFlag = False) -> None:
    """Assign each item of a batch to qualified experts."""
    _require_batch(batch)
    from flows.dispatch import DispatchParams, dispatch_flow

    result = dispatch_flow(DispatchParams(batch_id=batch))
    _emit(
        result,
        as_json,
        [
            f"batch {batch}: {result.assignments} assignments for {result.items} items; "
            f"{result.unassignable} unassignable; {result.expired} expired; "
            f"expected {result.expected_hours:,.1f} h, ${result.expected_cost_usd:,.2f}; "
            f"projected finish {result.projected_finish or '-'}",
        ],
    )


@app.command()
def simulate(
    batch: BatchOption,
    url: Annotated[
        str | None, typer.Option(help="A running `nightshift serve`; unset starts one here for the run.")
    ] = None,
    experts: Annotated[int | None, typer.Option(help="Play at most this many of the batch's experts.")] = None,
    concurrency: Annotated[int, typer.Option(help="Experts working at once.")] = 100,
    time_scale: Annotated[float, typer.Option(help="Seconds waited per simulated second of work.")] = 1 / 600,
    tasks_at_once: Annotated[int, typer.Option(help="Tasks each expert keeps open at once.")] = 1,
) -> None:
    """Synthetic experts do a batch's open tasks through the expert API, over HTTP."""
    _require_batch(batch)
    from flows.simulate import SimulateParams, simulate_flow

    def run(base_url: str) -> Any:
        params = SimulateParams(
            batch_id=batch,
            url=base_url,
            experts=experts,
            concurrency=concurrency,
            time_scale=time_scale,
            tasks_at_once=tasks_at_once,
        )
        return simulate_flow(params)

    if url:
        report = run(url)
    else:
        from app.web import ServiceThread, create_app
        from tasks.runtime import resources

        with ServiceThread(create_app(resources())) as server:
            report = run(server.url)
    typer.echo(
        f"batch {batch}: {report.experts} experts, {report.submitted} submissions, {report.refused} refused, "
        f"{report.closed} closed meanwhile, {report.seconds:.1f} s"
    )
    for error in report.errors:
        typer.echo(f"  {error}", err=True)
    if report.errors:
        raise NightshiftError(f"{len(report.errors)} simulated experts stopped on an error")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """The web service: expert workbench pages, the expert API and the client API (docs at /docs)."""
    import uvicorn

    _ready_sessions()
    # No access log: it would be noise at hundreds of requests a second, and paths carry no secrets.
    uvicorn.run("app.web:app_from_environment", factory=True, host=host, port=port, workers=workers, access_log=False)


@app.command()
def stack(
    port: Annotated[int, typer.Option(help="Prefect server (API and UI) port.")] = 4200,
    workers: Annotated[int, typer.Option(min=1, help="Prefect workers on the nightshift pool.")] = 1,
    worker_limit: Annotated[int, typer.Option(min=1, help="Flow runs each worker runs at once.")] = 4,
    poll_seconds: Annotated[
        float, typer.Option(min=0.5, help="How often a worker asks the server for runs (Prefect's default: 10).")
    ] = 10.0,
    web_port: Annotated[int, typer.Option(help="Web service port.")] = 8000,
    web: Annotated[bool, typer.Option(help="Start the web service (workbench, expert and client APIs).")] = True,
    schedules: Annotated[
        bool, typer.Option(help="Let deployment schedules start runs (off: only what you trigger runs).")
    ] = True,
) -> None:
    """The local stack: Prefect server and UI, limits, work pool, deployments, workers, web service.
    Ctrl-C, SIGTERM or SIGHUP stop every process it started."""
    from deployments.stack import LocalStack, stop_on_termination
    from nightshift.platform.migrate import upgrade

    stop_on_termination()
    local = LocalStack(
        home=_settings().home.resolve(),
        port=port,
        workers=workers,
        worker_limit=worker_limit,
        web_port=web_port if web else None,
        worker_poll_seconds=poll_seconds,
        schedules=schedules,
    )
    # One command for the whole stack: the schema is created or migrated first, as `db upgrade` does.
    upgrade(_settings().resolved_database_url)
    with local:
        typer.echo(f"Prefect UI   http://127.0.0.1:{port}")
        if web:
            typer.echo(f"web service  http://127.0.0.1:{web_port}")
        typer.echo(f"{workers} worker(s) on pool 'nightshift'; logs in {local.logs}; Ctrl-C stops everything")
        try:
            while not (crashed := local.exited()):
                time.sleep(1)
        except KeyboardInterrupt:
            crashed = []
        if crashed:
            raise NightshiftError(f"{', '.join(crashed)} stopped; see {local.logs}")


@app.command()
def review(batch: BatchOption, as_json: JsonFlag = False) -> None:
    """Gate and aggregate a batch's submissions."""
    _require_batch(batch)
    from flows.review import ReviewParams, review_flow

    result = review_flow(ReviewParams(batch_id=batch))
    _emit(
        result,
        as_json,
        [
            f"batch {batch}: gated {result.gated} submissions, rejected {result.rejected}; "
            f"{result.passed_items} items passed, {result.rework_items} back for rework, "
            f"{result.more_overlap_items} need one more expert; batch is {result.batch_status}",
        ],
    )


@app.command()
def deliver(
    batch: Annotated[int | None, typer.Option("--batch", "-b", help="Batch id; omit for all due.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Deliver passed batches and send every due webhook page."""
    if batch is not None:
        _require_batch(batch)
    from flows.deliver import DeliverParams, deliver_flow

    result = deliver_flow(DeliverParams(batch_id=batch))
    sent = result.sent
    _emit(
        result,
        as_json,
        [
            f"pages: {sent.outcomes or 'none due'}; {sent.records_delivered} records delivered",
            *(f"endpoint of {c} disabled (410 Gone): its pages wait" for c in sent.disabled_clients),
            *(
                f"batch {s['batch_id']} v{s['version']}: {s['status']}, {s['records']} records, file {s['file']}"
                for s in result.settled
            ),
        ],
    )


@app.command()
def redeliver(
    batch: BatchOption,
    reason: Annotated[str, typer.Option(help="Why, as the client will read it in the manifest.")],
    as_json: JsonFlag = False,
) -> None:
    """Send a delivered or dead-lettered batch again as a new version, saying what changed."""
    from nightshift.delivery.outbox import request_redelivery
    from nightshift.platform.db import transaction

    _require_batch(batch)
    with transaction(_ready_sessions()) as session:
        request_redelivery(session, batch, reason, "cli")
    deliver(batch, as_json)


@app.command()
def reaggregate(batch: BatchOption, as_json: JsonFlag = False) -> None:
    """Aggregate a finished batch again with today's reliabilities; changes go out as a new version."""
    from nightshift.platform.db import transaction
    from nightshift.review.settle import reaggregate_batch

    _require_batch(batch)
    with transaction(_ready_sessions()) as session:
        changed = reaggregate_batch(session, batch, "cli")
    typer.echo(f"batch {batch}: {changed} final answers changed")
    if changed:
        deliver(batch, as_json)


@app.command()
def deliveries(batch: BatchOption, as_json: JsonFlag = False) -> None:
    """Every version of a batch's delivery: why, its pages and their attempts."""
    from nightshift.reports.status import delivery_history

    _require_batch(batch)
    with _ready_sessions()() as session:
        history = delivery_history(session, batch)
    _emit(
        history,
        as_json,
        [
            f"v{d['version']} {d['status']}: {d['records']} records in {d['pages']} pages "
            f"({d['pages_delivered']} delivered, {d['attempts']} attempts) - {d['reason']}"
            for d in history
        ]
        or [f"batch {batch} has no delivery"],
    )


def _client(session: Any, slug: str) -> Any:
    from sqlalchemy import select

    from nightshift.platform.models import Client

    client = session.scalars(select(Client).where(Client.slug == slug)).first()
    if client is None:
        raise NightshiftError(f"unknown client {slug}")
    return client


@clients_app.command("enable-webhook")
def clients_enable_webhook(client: str) -> None:
    """Enable an endpoint disabled by a 410; its waiting pages are due at once."""
    from nightshift.delivery.endpoints import enable_endpoint
    from nightshift.platform.db import transaction
    from nightshift.platform.models import utcnow

    with transaction(_ready_sessions()) as session:
        waiting = enable_endpoint(session, _client(session, client), utcnow())
    typer.echo(f"{client}: webhook enabled, {waiting} pages due now")


@clients_app.command("rotate-secret")
def clients_rotate_secret(
    client: str,
    finish: Annotated[bool, typer.Option("--finish", help="End the rotation: drop the old secret.")] = False,
) -> None:
    """Start a signing-secret rotation (new and old both sign) or finish it (the new one alone)."""
    from nightshift.delivery.endpoints import new_webhook_secret
    from tasks.runtime import resources

    with _ready_sessions()() as session:
        ref = _client(session, client).webhook_secret_ref
    if not ref:
        raise NightshiftError(f"client {client} has no webhook secret")
    secrets = resources().secrets
    current = secrets.resolve(ref)
    if finish:
        secrets.store(ref, current[:1])
        typer.echo(f"{client}: rotation finished, signing with the new secret only")
        return
    fresh = new_webhook_secret()
    secrets.store(ref, [fresh, current[0]])
    # Shown once, to the operator who asked, for the client; never logged.
    typer.echo(f"{client}: both secrets sign now. Give the client the new secret, then run --finish:")
    typer.echo(fresh)


@clients_app.command("api-key")
def clients_api_key(
    client: str,
    rotate: Annotated[bool, typer.Option("--rotate", help="Revoke the client's other keys.")] = False,
) -> None:
    """Issue an API key for a client's systems (shown once; only its hash is kept)."""
    from nightshift.platform.db import transaction
    from nightshift.platform.keys import issue_key, rotate_key

    with transaction(_ready_sessions()) as session:
        client_id = _client(session, client).id
        issued, revoked = (
            rotate_key(session, "client", client_id) if rotate else (issue_key(session, "client", client_id), 0)
        )
    typer.echo(f"{client}: API key {issued.prefix}… issued; {revoked} older keys revoked. Shown once:")
    typer.echo(issued.key)


@experts_app.command("token")
def experts_token(
    handle: str,
    rotate: Annotated[bool, typer.Option("--rotate", help="Revoke the expert's other tokens.")] = False,
) -> None:
    """Issue a personal token an expert signs in with (shown once; only its hash is kept)."""
    from nightshift.platform.db import transaction
    from nightshift.platform.keys import issue_key, owner_id, rotate_key

    with transaction(_ready_sessions()) as session:
        expert_id = owner_id(session, "expert", handle)
        issued, revoked = (
            rotate_key(session, "expert", expert_id) if rotate else (issue_key(session, "expert", expert_id), 0)
        )
    typer.echo(f"{handle}: token {issued.prefix}… issued; {revoked} older tokens revoked. Shown once:")
    typer.echo(issued.key)


@app.command()
def nightly(
    drop_folder: Annotated[Path | None, typer.Option(help="Folder of <project-slug>/*.jsonl files.")] = None,
) -> None:
    """Run the nightly pipeline once, now."""
    _ready_sessions()
    from flows.nightly import NightlyParams, nightly_flow

    for outcome in nightly_flow(NightlyParams(drop_folder=str(drop_folder) if drop_folder else None)):
        typer.echo(f"batch {outcome['batch_id']}: failed steps {outcome['failed_steps']}")


@app.command()
def status(batch: Annotated[int | None, typer.Option("--batch", "-b")] = None, as_json: JsonFlag = False) -> None:
    """Where every batch stands."""
    from nightshift.reports.status import batch_statuses

    with _ready_sessions()() as session:
        rows = batch_statuses(session, [batch] if batch else None)
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in rows], indent=2))
        return
    typer.echo(
        f"{'batch':>5}  {'client':<12} {'project':<20} {'status':<11} {'agree':>5}  {'cost / budget':>20}  "
        f"{'projected finish':<17} {'deadline':<17} items"
    )
    for r in rows:
        items = " ".join(f"{k}={v}" for k, v in sorted(r.items.items()))
        agreement = f"{r.mean_agreement:.2f}" if r.mean_agreement is not None else "-"
        cost = f"${r.cost_so_far_usd}" + (f" / ${r.budget_usd}" if r.budget_usd else "")
        finish = (r.projected_finish or "-")[:16].replace("T", " ")
        deadline = (r.deadline or "-")[:16].replace("T", " ") + (" AT RISK" if r.at_risk else "")
        typer.echo(
            f"{r.batch_id:>5}  {r.client:<12} {r.project:<20} {r.status:<11} {agreement:>5}  {cost:>20}  "
            f"{finish:<17} {deadline:<17} {items}"
        )


@app.command()
def demo(
    items: Annotated[Path | None, typer.Option(help="Items JSONL (default: bundled sample).")] = None,
) -> None:
    """Run the whole pipeline on bundled sample data with an embedded database and a local receiver."""
    from app.demo import run_demo

    run_demo(items)


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a record arrives, so a CLI run in process (a test,
    the demo) sends its warnings where that run's errors go."""

    def emit(self, record: logging.LogRecord) -> None:
        self.setStream(sys.stderr)
        super().emit(record)


def _plain_warnings() -> None:
    """Our own warnings (Slack not configured, a webhook refused) still reach the terminal, plainly."""
    logger = logging.getLogger("nightshift")
    if any(isinstance(h, _CurrentStderr) for h in logger.handlers):
        return
    handler = _CurrentStderr(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    handler.setLevel(logging.WARNING)
    logger.addHandler(handler)
    logger.propagate = False


def main(argv: list[str] | None = None) -> None:
    """The entry point: one line for any failure, exit codes as documented. argv: the arguments
    (sys.argv's when None), so the CLI can run in process."""
    _plain_warnings()
    try:
        app(args=argv, standalone_mode=False)
    except NightshiftError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("NIGHTSHIFT_DEBUG"):
            raise
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        typer.echo(f"error: {type(exc).__name__}: {first} (NIGHTSHIFT_DEBUG=1 shows the traceback)", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
