"""Times each stage on generated data and prints rows/s per stage beside a baseline from the same run.

    uv run python bench/run.py --items 20000 --experts 2000            # PostgreSQL on 127.0.0.1
    uv run python bench/run.py --items 5000 --database sqlite          # the embedded default

Stages run through the domain core directly (the Prefect layer only wraps them), repeated
--repeat times on fresh databases; medians are printed, since this machine is small and shared.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import psycopg  # noqa: E402
from sqlalchemy import text  # noqa: E402

from app.receiver import WebhookReceiver  # noqa: E402
from bench.databases import drop_database, fresh_database  # noqa: E402
from expectations.agreement import check_agreement  # noqa: E402
from expectations.delivery_readiness import check_delivery_readiness  # noqa: E402
from expectations.submissions import check_submissions  # noqa: E402
from nightshift.delivery import build, endpoints, outbox, webhooks  # noqa: E402
from nightshift.dispatch import assignments  # noqa: E402
from nightshift.experts.registry import ExpertRow, import_experts  # noqa: E402
from nightshift.ingest import batches, store  # noqa: E402
from nightshift.ingest.formats import read_chunks  # noqa: E402
from nightshift.platform.db import make_engine, make_sessionmaker, transaction  # noqa: E402
from nightshift.platform.migrate import upgrade  # noqa: E402
from nightshift.platform.models import Client, utcnow  # noqa: E402
from nightshift.platform.outside import EnvSecretResolver, HttpxPoster  # noqa: E402
from nightshift.projects.registry import apply_spec, project_spec  # noqa: E402
from nightshift.projects.spec import load_spec  # noqa: E402
from nightshift.review import gates, settle  # noqa: E402
from nightshift.review.round_signals import record_round_signals  # noqa: E402
from nightshift.simulation import simulate  # noqa: E402
from nightshift.simulation.synthetic import generate_experts, generate_items  # noqa: E402


def raw_copy_baseline(url: str, path: Path) -> float:
    """Ceiling for ingest: psycopg COPY of the same rows into a bare table, no validation."""
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    started = time.perf_counter()
    with psycopg.connect(plain) as connection, connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bare_items (external_id text, payload jsonb)")
        with cursor.copy("COPY bare_items (external_id, payload) FROM STDIN") as copy, path.open() as handle:
            for line in handle:
                row = json.loads(line)
                copy.write_row((row["external_id"], line))
        connection.commit()
    return time.perf_counter() - started


def timed(label: str, rows: Callable[[], int], results: dict[str, list[tuple[float, int]]]) -> None:
    started = time.perf_counter()
    count = rows()
    results.setdefault(label, []).append((time.perf_counter() - started, count))


def one_run(kind: str, items: int, experts: int, workdir: Path, run: int, results: dict) -> None:
    url = fresh_database(kind, workdir, run)
    try:
        upgrade(url)
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        spec = load_spec(ROOT / "samples" / "spec.yaml")
        items_file = workdir / "items.jsonl"
        if not items_file.exists():
            with items_file.open("w") as out:
                for item in generate_items(items, seed=99, text_bytes=1300, prefix="bench"):
                    out.write(json.dumps(item) + "\n")
        rows = [ExpertRow.model_validate(e) for e in generate_experts(experts, seed=5)]
        with transaction(sessions) as session:
            apply_spec(session, spec)
            timed("experts import", lambda: import_experts(session, rows) or len(rows), results)

        def run_ingest() -> int:
            with transaction(sessions) as session:
                batch_id = batches.open_batch(session, spec.project.slug, items_file).batch_id
            total = 0
            for chunk, _ in read_chunks(items_file, "jsonl", False, 5_000):
                with transaction(sessions) as session:
                    total += store.load_chunk(session, batch_id, str(items_file), chunk).accepted
            return total

        timed("ingest", run_ingest, results)
        if kind == "postgresql":
            seconds = raw_copy_baseline(url, items_file)
            results.setdefault("baseline: raw COPY", []).append((seconds, items))

        def run_dispatch() -> int:
            with transaction(sessions) as session:
                return assignments.dispatch_batch(session, 1, utcnow()).assignments

        timed("dispatch (assignments)", run_dispatch, results)

        def run_simulate() -> int:
            with sessions() as session:
                ids = simulate.open_assignments(session, 1)
            with transaction(sessions) as session:
                return simulate.simulate_work(session, 1, ids)

        timed("simulate (submissions)", run_simulate, results)

        def run_review() -> int:
            with sessions() as session:
                rows_ = gates.submissions_to_gate(session, 1)
                project = project_spec(session, 1).project
                gates.add_echoes(session, rows_, project)
            copied = gates.copies_among(rows_, project)
            outcome = check_submissions(rows_, project, None, copied)
            report = settle.ReviewReport()
            with transaction(sessions) as session:
                gates.record_gate(session, 1, outcome)
                gates.apply_submission_gate(session, outcome, rows_)
                record_round_signals(session, rows_, project, copied)
                settle.aggregate_ready_items(session, 1, report, check_agreement)
                settle.settle_batch(session, 1)
            return len(rows_)

        timed("review: gate + aggregate (submissions)", run_review, results)

        secret = endpoints.new_webhook_secret()
        os.environ["BENCH_WEBHOOK_SECRET"] = secret
        with WebhookReceiver(secret) as receiver:
            with transaction(sessions) as session:
                client = session.get_one(Client, 1)
                client.webhook_url, client.webhook_secret_ref = receiver.url, "env:BENCH_WEBHOOK_SECRET"
                session.execute(text("UPDATE batches SET status = 'passed'"))

            def run_deliver() -> int:
                options = build.DeliveryOptions(directory=workdir / f"out-{run}")
                outbox.prepare_delivery(sessions, 1, options, check_delivery_readiness, gates.record_gate)
                webhooks.send_due(
                    sessions, HttpxPoster(10), EnvSecretResolver().resolve, ["127.0.0.1"], webhooks.SendStats()
                )
                return len(receiver.log.unique_records())

            timed("deliver (records)", run_deliver, results)
        engine.dispose()
    finally:
        drop_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--experts", type=int, default=2_000)
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[tuple[float, int]]] = {}
    with tempfile.TemporaryDirectory(prefix="nightshift-bench-") as folder:
        for run in range(args.repeat):
            one_run(args.database, args.items, args.experts, Path(folder), run, results)
    print(
        f"\nNightshift bench: {args.items} items, {args.experts} experts, {args.database}, median of {args.repeat} runs"
    )
    print(f"{'stage':<42}{'rows':>9}{'seconds':>10}{'rows/s':>11}")
    if os.environ.get("BENCH_RAW"):
        print(json.dumps(results))
    rates: dict[str, float] = {}
    for label, samples in results.items():
        seconds = statistics.median(s for s, _ in samples)
        rows = samples[0][1]
        rates[label] = rows / seconds if seconds else 0.0
        print(f"{label:<42}{rows:>9}{seconds:>10.2f}{rates[label]:>11,.0f}")
    if "baseline: raw COPY" in rates:
        print(f"\ningest / raw COPY ratio: {rates['ingest'] / rates['baseline: raw COPY']:.2f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:.0f} MB")


if __name__ == "__main__":
    main()
