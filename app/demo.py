"""`nightshift demo`: the whole pipeline on bundled data, embedded SQLite, Prefect's local API."""

from __future__ import annotations

import os
import time
from pathlib import Path

import typer
import yaml

from app.receiver import WebhookReceiver
from nightshift.delivery.endpoints import new_webhook_secret
from nightshift.resources import load_settings

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
MAX_ROUNDS = 12
TIME_SCALE = 1 / 600
# Each simulated expert keeps a few tasks open at once, so the demo's first round takes seconds.
TASKS_AT_ONCE = 4


def run_demo(items: Path | None = None) -> None:
    started = time.perf_counter()
    settings = load_settings()
    # The demo keeps to its own SQLite file so it never touches a configured database.
    demo_db = (settings.home / "demo.db").resolve()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{demo_db}{suffix}").unlink(missing_ok=True)
    os.environ["NIGHTSHIFT_DATABASE_URL"] = f"sqlite:///{demo_db}"
    secret = new_webhook_secret()
    os.environ["ACME_WEBHOOK_SECRET"] = secret
    # The state folder's local Prefect API (started in the background if none is configured),
    # as every other command uses: it starts while the demo loads, and its runs stay in sight.
    from app.local_prefect import start

    prefect_ready = start(settings)

    from app.model_server import ModelServerThread
    from app.web import ServiceThread, create_app
    from flows.deliver import DeliverParams, deliver_flow
    from flows.dispatch import DispatchParams, dispatch_flow
    from flows.ingest import IngestParams, ingest_flow
    from flows.payouts import PayoutParams, payouts_flow
    from flows.review import ReviewParams, review_flow
    from flows.simulate import SimulateParams, simulate_flow
    from nightshift.experts.registry import import_experts, parse_experts
    from nightshift.generate.responses import counts
    from nightshift.payouts.periods import Period
    from nightshift.platform.db import transaction
    from nightshift.platform.migrate import upgrade
    from nightshift.platform.models import utcnow
    from nightshift.projects.registry import apply_spec
    from nightshift.projects.spec import parse_spec
    from nightshift.reports.status import batch_statuses
    from nightshift.work import exams
    from tasks.runtime import reset_resources, resources

    reset_resources()
    upgrade(os.environ["NIGHTSHIFT_DATABASE_URL"])
    say = typer.echo
    with prefect_ready(), WebhookReceiver(secret) as receiver, ModelServerThread() as model:
        # Experts test live models: the local model server's three models answer every scenario
        # (deterministic, with planted faults), and experts rank and grade the answers.
        spec_data = yaml.safe_load((SAMPLES / "compare.yaml").read_text())
        spec_data["client"]["webhook_url"] = receiver.url
        for endpoint in spec_data["project"]["generation"]["endpoints"]:
            endpoint["base_url"] = model.url
        # The simulated experts' hours pass 600 times faster too: their runs of rewritten prompts
        # per hour are not held to a human's pace.
        spec_data["project"]["generation"]["runs_per_expert_per_hour"] = 1000
        # Simulated experts work 600 times faster than real ones (a 20-minute task takes 2 s), so
        # the time-on-task gate is scaled the same way: 1 s here stands for 10 minutes.
        spec_data["project"]["gates"]["min_time_on_task_seconds"] = 1
        # Reading speed is not compressed with them: that check is off here.
        spec_data["project"]["gates"]["reading_chars_per_second"] = None
        spec = parse_spec(spec_data, "samples/compare.yaml")
        rows, _ = parse_experts(SAMPLES / "experts.jsonl")
        exam_files = sorted((SAMPLES / "exams").glob("*.yaml"))
        with transaction(resources().sessions) as session:
            apply_spec(session, spec)
            import_experts(session, rows)
            # The workbench's Exams page has the finance exam and the training new experts start with.
            for path in exam_files:
                exams.add_exam(session, exams.load_exam(path))
        say(
            f"project {spec.project.slug} applied; {len(rows)} experts imported; {len(exam_files)} exams added; "
            f"receiver at {receiver.url}; model server at {model.url}"
        )

        source = str((items or SAMPLES / "items.jsonl").resolve())
        ingested = ingest_flow(IngestParams(project=spec.project.slug, source=source))
        batch = ingested.batch_id
        say(
            f"ingest: batch {batch}, {ingested.total('accepted')} items accepted, "
            f"{ingested.total('quarantined')} quarantined"
        )
        with resources().sessions() as session:
            answered = counts(session, batch)
        say(
            "generate: "
            + ", ".join(f"{endpoint} {status} {n}" for (endpoint, status), n in sorted(answered.items()))
            + " (model responses, shown to the experts beside each item)"
        )

        assignments = submissions = rejected = 0
        # The experts work through the real web service, over HTTP, as real experts would.
        with ServiceThread(create_app(resources())) as web:
            say(f"web service at {web.url} (workbench pages, expert and client APIs)")
            for round_number in range(1, MAX_ROUNDS + 1):
                dispatched = dispatch_flow(DispatchParams(batch_id=batch))
                simulated = simulate_flow(
                    SimulateParams(batch_id=batch, url=web.url, time_scale=TIME_SCALE, tasks_at_once=TASKS_AT_ONCE)
                )
                reviewed = review_flow(ReviewParams(batch_id=batch))
                assignments += dispatched.assignments
                submissions += simulated.submitted
                rejected += reviewed.rejected
                say(
                    f"round {round_number}: {dispatched.assignments} assignments, {simulated.submitted} submissions "
                    f"by {simulated.experts} experts over HTTP in {simulated.seconds:.1f} s, "
                    f"{reviewed.rejected} rejected by the gate, {reviewed.passed_items} items passed, "
                    f"batch {reviewed.batch_status}"
                )
                if simulated.errors:
                    raise SystemExit(f"demo failed: {simulated.errors[0]}")
                if reviewed.batch_status == "passed" or (dispatched.assignments == 0 and simulated.submitted == 0):
                    break

        delivered = deliver_flow(DeliverParams(batch_id=batch))
        this_week = Period.week_of(utcnow(), resources().settings.payout_timezone)
        paid = payouts_flow(PayoutParams(period=this_week.label, timezone=this_week.timezone))
        again = ingest_flow(IngestParams(project=spec.project.slug, source=source, force=True))
        with resources().sessions() as session:
            status = batch_statuses(session, [batch])[0]

    records = receiver.log.unique_records()
    files = [s["file"] for s in delivered.settled]
    say("")
    say("Nightshift demo summary")
    say(
        f"  items ingested        {ingested.total('accepted')} "
        f"(re-ingest of the same file added {again.total('accepted')})"
    )
    say(f"  assignments           {assignments}")
    say(f"  submissions           {submissions} ({rejected} rejected by the submissions gate)")
    say(f"  gate runs             {status.gates} (latest run of each gate)")
    say(f"  items by status       {status.items}")
    say(f"  items delivered       {status.items.get('delivered', 0)}")
    say(
        f"  webhooks received     {len(receiver.log.verified) + receiver.log.rejected}, "
        f"verified {len(receiver.log.verified)}, rejected {receiver.log.rejected}; "
        f"{len(records)} unique records"
    )
    say(f"  delivered file        {files[0] if files else '(none)'}")
    if files:
        folder = Path(files[0]).parent
        for kind in ("sft", "preference", "reward"):
            if (folder / "training" / f"{kind}.parquet").exists():
                say(f"  training data ({kind:<10}) {folder / 'training' / f'{kind}.parquet'}")
        say(f"  dataset card          {folder / 'README.md'} (datasets.load_dataset(folder, 'preference'))")
    say(
        f"  cost so far           ${status.cost_so_far_usd} (models' tokens ${status.model_cost_usd}) "
        f"of a ${status.budget_usd} batch budget"
    )
    say(f"  expert pay {paid.period}    ${paid.period_total} to {paid.payees} experts ({paid.csv_path})")
    say(f"  wall time             {time.perf_counter() - started:.1f} s")
    reset_resources()
    if not records or receiver.log.rejected:
        raise SystemExit("demo failed: nothing delivered, or a webhook failed verification")
