"""The whole pipeline at scale: a generated file of N items through the real Prefect flows, timed per stage.

    uv run python bench/pipeline.py                                # 1,000,000 items, PostgreSQL on 127.0.0.1
    uv run python bench/pipeline.py --items 20000 --json out.json

One run on a fresh database, with its Prefect server on PostgreSQL (bench/prefect_server.py):

1. ingest: a JSONL file of ~1.3 KB items (one in twenty a gold item with its known answer, as in
   samples/generate.py) through the ingest flow, after a warm-up ingest of the bundled samples (as
   bench/ingest.py does); baseline: a raw psycopg COPY of the same file (bench/ingest.py raw_copy).
2. round after round, as flows/simulate.py until_done_flow runs them (inside one flow, so the
   stages are its subflows and tasks): dispatch (the dispatch flow), work (the synthetic experts'
   answers written in bulk through the core, not over HTTP), review (the review flow; baseline: a
   bare read of the submissions it gates, as bench/review.py reads them), adjudication (the pool's
   adjudicators, through the workbench's claim), until the batch passes or stops moving.
3. delivery: the deliver flow to a client endpoint (app.receiver.WebhookReceiver, in a process of
   its own, verifying every signature); baseline: the same page bodies POSTed unsigned to the same
   receiver on one HTTP client (bench/deliver.py's), which reads each and refuses it: the transport
   alone. The receiver's verifying (its own process, reported apart) is inside the delivery's time.

Printed per stage: seconds, rate, peak RSS of this process during the stage (the high-water mark is
reset before each stage; a stage's peak includes what earlier stages left resident, so "added" is
the most it rose over the RSS it started with), for ingest also the gate worker's peak; each
stage's baseline and the stage's time over the baseline's; then the totals, and per round a line.
On --database sqlite the ingest and review baselines (psycopg) are left out.

Experts: --experts, by default one per ten items (at least 1,000). Each takes 20-40 open tasks, so
a round staffs about 2.6 x N annotations (N x 3 and gold are needed) and the next rounds the rest.
"""

from __future__ import annotations

import argparse
import atexit
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if "NIGHTSHIFT_HOME" not in os.environ:
    os.environ["NIGHTSHIFT_HOME"] = tempfile.mkdtemp(prefix="nightshift-bench-home-")
    # Deliveries and Data Docs of a million items are large: the bench's own state folder goes with it.
    atexit.register(shutil.rmtree, os.environ["NIGHTSHIFT_HOME"], True)
# The gate's worker is this run's own: measured from its start, and gone with the bench.
os.environ.setdefault("NIGHTSHIFT_GATE_WORKER_IDLE_SECONDS", "0")

from nightshift.resources import prepare_process  # noqa: E402

# Every flow logs each task run: the console gets warnings only, the Prefect API the rest.
prepare_process(console_log_level="WARNING")

from bench import prefect_server  # noqa: E402

prefect_server.use_postgres()

import psycopg  # noqa: E402

from bench.databases import drop_database, fresh_database, quiet  # noqa: E402
from bench.ingest import peak_rss_mb, raw_copy  # noqa: E402

FIELDS = ("prompt", "model_answer", "context", "language", "domain")
GOLD_EVERY = 20  # one in twenty is a gold item, as in samples/generate.py
MAX_ROUNDS = 20  # until_done_flow's default
SECRET_ENV = "ACME_WEBHOOK_SECRET"  # the sample spec's client secret reference


def make_file(path: Path, items: int) -> None:
    """bench/ingest.py's items (same seed, size, ids), one in twenty with its gold answer."""
    if path.exists():
        return
    from nightshift.ingest.rows import content_hash
    from nightshift.projects.spec import load_spec
    from nightshift.simulation.synthetic import generate_items, true_answer

    labels = load_spec(ROOT / "samples" / "spec.yaml").project.labels
    partial = path.with_suffix(".partial")
    with partial.open("w") as out:
        for n, item in enumerate(generate_items(items, seed=1234, text_bytes=1300, prefix="bench")):
            if n % GOLD_EVERY == 0:
                item["gold_answer"] = true_answer(content_hash({k: item[k] for k in FIELDS}), labels)
            out.write(json.dumps(item) + "\n")
    partial.rename(path)


def rss_mb() -> float:
    """This process's resident memory now (VmRSS), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc")


def reset_peak() -> bool:
    """Start this process's high-water mark (VmHWM) again from its current RSS (Linux 4.0+)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass
class Stage:
    unit: str
    seconds: float = 0.0
    count: int = 0
    peak_mb: float = 0.0
    # The most the stage added to what the process held when it started (freed memory is mostly
    # kept by the allocator, so a stage's peak includes what the stages before it left resident).
    rise_mb: float = 0.0
    baseline: str | None = None  # what the baseline is; None: the stage has none
    baseline_seconds: float = 0.0
    worker_peak_mb: float | None = None
    last: float = 0.0  # seconds of the latest measure()
    last_peak_mb: float = 0.0  # and its peak RSS

    def measure(self, step: Callable[[], Any]) -> Any:
        reset_peak()
        before = rss_mb()
        started = time.perf_counter()
        result = step()
        self.last = time.perf_counter() - started
        self.seconds += self.last
        self.last_peak_mb = peak_rss_mb()
        self.peak_mb = max(self.peak_mb, self.last_peak_mb)
        self.rise_mb = max(self.rise_mb, self.last_peak_mb - before)
        return result


# The client's endpoint runs in a process of its own: verifying signatures and parsing every page
# is the client's work, and it keeps a tally, not the bodies (a million records would be gigabytes).
class _Tally:
    def __init__(self) -> None:
        self.messages = 0
        self.webhook_ids: set[str] = set()
        self.records = 0
        self.verify_seconds = 0.0

    def append(self, received: Any) -> None:  # the receiver's log.verified.append, under its lock
        self.messages += 1
        if received.webhook_id not in self.webhook_ids:
            self.webhook_ids.add(received.webhook_id)
            self.records += len(received.body.get("records", []))


def serve_receiver(secret: str, control: Connection) -> None:
    from app.receiver import WebhookReceiver

    with WebhookReceiver(secret) as receiver:
        tally = _Tally()
        receiver.log.verified = tally  # type: ignore[assignment]
        verify = receiver.verify

        def timed_verify(body: str, headers: dict[str, str]) -> dict[str, Any] | None:
            started = time.perf_counter()
            try:
                return verify(body, headers)
            finally:
                tally.verify_seconds += time.perf_counter() - started

        receiver.verify = timed_verify  # type: ignore[method-assign]
        control.send(receiver.url)
        while control.recv() == "tally":
            control.send(
                {
                    "messages": tally.messages,
                    "unique_messages": len(tally.webhook_ids),
                    "records": tally.records,
                    "rejected": receiver.log.rejected,
                    "verify_seconds": tally.verify_seconds,
                }
            )


def bare_read(plain: str, batch_id: int) -> float:
    """bench/review.py's baseline: the submissions the review is about to gate read into Python (in
    pages, so the baseline holds no more memory than a page)."""
    from nightshift.platform.db import POSTGRES_OPTIONS

    started = time.perf_counter()
    with psycopg.connect(plain, options=POSTGRES_OPTIONS) as connection, connection.cursor("bare") as cursor:
        cursor.execute(
            "SELECT s.id, a.item_id, a.expert_id, s.time_on_task_seconds, s.answer FROM submissions s"
            " JOIN assignments a ON a.id = s.assignment_id JOIN items i ON i.id = a.item_id"
            " WHERE i.batch_id = %s AND a.role = 'annotate' AND a.status = 'submitted'",
            (batch_id,),
        )
        while cursor.fetchmany(10_000):
            pass
    return time.perf_counter() - started


def page_bodies(sessions: Any, delivery_id: int) -> Iterator[bytes]:
    """The delivery's pages as they were sent, one at a time (bench/deliver.py's baseline bodies)."""
    from sqlalchemy import select

    from nightshift.delivery import webhooks
    from nightshift.platform.models import Delivery, DeliveryMessage

    with sessions() as session:
        record = session.get_one(Delivery, delivery_id)
        manifest_json = json.dumps(record.manifest, sort_keys=True, ensure_ascii=False)
        event, pages = record.manifest["event"], record.page_count
        query = (
            select(DeliveryMessage.page, DeliveryMessage.records)
            .where(DeliveryMessage.delivery_id == delivery_id)
            .order_by(DeliveryMessage.page)
            .execution_options(yield_per=20)
        )
        for page, records in session.execute(query):
            yield webhooks.page_body(event, manifest_json, page, pages, records).encode()


def unsigned_posts(bodies: Iterator[bytes], url: str) -> tuple[float, int, int]:
    """Seconds spent POSTing (reading the bodies out of the database is not counted), pages, bytes."""
    import httpx

    seconds, pages, size = 0.0, 0, 0
    with httpx.Client(timeout=30) as client:
        for body in bodies:
            started = time.perf_counter()
            answer = client.post(url, content=body, headers={"content-type": "application/json"})
            seconds += time.perf_counter() - started
            # The receiver reads the whole page, then refuses it: it bears no signature.
            assert answer.status_code == 401, answer.status_code
            pages += 1
            size += len(body)
    return seconds, pages, size


def rounds_flow_factory() -> Callable[..., dict[str, Any]]:
    """until_done_flow (flows/simulate.py) with a clock around each stage: a flow, so dispatch and
    review run as its subflows, as they do there."""
    from prefect import flow

    from flows.dispatch import DispatchParams, dispatch_flow
    from flows.review import ReviewParams, review_flow
    from flows.simulate import round_is_last, rounds_idle
    from tasks.simulate import adjudicate_waiting, simulate_open_work

    @flow(name="bench-until-done")
    def bench_until_done(batch_id: int, max_rounds: int, plain: str | None) -> dict[str, Any]:
        stages = {
            "dispatch": Stage("assignments"),
            "work": Stage("submissions"),
            "review": Stage("submissions", baseline="bare read" if plain else None),
            "adjudication": Stage("adjudications"),
        }
        status, idle, rounds, detail = "", 0, 0, []
        for rounds in range(1, max_rounds + 1):  # the last round is reported
            dispatched = stages["dispatch"].measure(lambda: dispatch_flow(DispatchParams(batch_id=batch_id)))
            staffed = dispatched.assignments
            stages["dispatch"].count += staffed
            answered = stages["work"].measure(lambda: simulate_open_work(batch_id))
            stages["work"].count += answered
            if plain:
                stages["review"].baseline_seconds += bare_read(plain, batch_id)
            review = stages["review"].measure(lambda: review_flow(ReviewParams(batch_id=batch_id)))
            stages["review"].count += review.gated
            decided = stages["adjudication"].measure(lambda: adjudicate_waiting(batch_id))
            stages["adjudication"].count += decided
            status = review.batch_status
            detail.append(
                {
                    "assigned": staffed,
                    "answered": answered,
                    "gated": review.gated,
                    "rejected": review.rejected,
                    "passed_items": review.passed_items,
                    "requeued_items": review.requeued_items,
                    "paused_experts": review.paused_experts,
                    "adjudicated": decided,
                    "status": status,
                }
                | {f"{name}_seconds": s.last for name, s in stages.items()}
                | {f"{name}_peak_mb": s.last_peak_mb for name, s in stages.items()}
            )
            print(
                f"  round {rounds}: {staffed:,} assigned, {answered:,} answered, {review.gated:,} gated "
                f"({review.rejected:,} rejected), {review.passed_items:,} items passed, "
                f"{review.requeued_items:,} re-queued, {review.paused_experts:,} experts paused, "
                f"{decided:,} adjudicated; batch {status}; "
                + ", ".join(f"{name} {s.last:.1f} s ({s.last_peak_mb:,.0f} MB)" for name, s in stages.items()),
                flush=True,
            )
            idle = rounds_idle(idle, staffed + answered + decided + review.passed_items + review.requeued_items)
            if round_is_last(status, decided, idle):
                break
        stage_figures = {k: asdict(v) for k, v in stages.items()}
        return {"status": status, "rounds": rounds, "detail": detail, "stages": stage_figures}

    return bench_until_done


def run(args: argparse.Namespace, path: Path) -> dict[str, Any]:
    import yaml

    from nightshift.delivery.endpoints import new_webhook_secret

    # Started before Prefect is imported, so the fork copies no threads of it.
    secret = new_webhook_secret()
    os.environ[SECRET_ENV] = secret
    control, child_end = multiprocessing.get_context("fork").Pipe()
    receiver = multiprocessing.get_context("fork").Process(target=serve_receiver, args=(secret, child_end), daemon=True)
    receiver.start()
    endpoint = control.recv()

    url = fresh_database(args.database, args.workdir, 0)
    os.environ["NIGHTSHIFT_DATABASE_URL"] = url
    plain = url.replace("postgresql+psycopg://", "postgresql://") if args.database == "postgresql" else None
    try:
        from flows.deliver import DeliverParams, deliver_flow
        from flows.ingest import IngestParams, ingest_flow
        from nightshift.experts.registry import ExpertRow, import_experts
        from nightshift.platform.db import transaction
        from nightshift.platform.migrate import upgrade
        from nightshift.projects.registry import apply_spec
        from nightshift.projects.spec import parse_spec
        from nightshift.simulation.synthetic import generate_experts
        from tasks.ingest import gate_worker
        from tasks.runtime import reset_resources, resources

        reset_resources()
        upgrade(url)
        spec_data = yaml.safe_load((ROOT / "samples" / "spec.yaml").read_text())
        spec_data["client"]["webhook_url"] = endpoint
        spec = parse_spec(spec_data, "samples/spec.yaml")
        started = time.perf_counter()
        experts = [ExpertRow.model_validate(e) for e in generate_experts(args.experts, seed=5)]
        with transaction(resources().sessions) as session:
            apply_spec(session, spec)
            import_experts(session, experts)
        setup = {"experts_import_seconds": time.perf_counter() - started}
        del experts
        # As bench/ingest.py: Prefect's and the gate worker's start are not the big file's.
        ingest_flow(IngestParams(project=spec.project.slug, source=str(ROOT / "samples" / "items.jsonl")))

        ingest = Stage("items", baseline="raw COPY" if plain else None)
        quiet(url)
        params = IngestParams(project=spec.project.slug, source=str(path), chunk_rows=args.chunk_rows)
        ingested = ingest.measure(lambda: ingest_flow(params))
        ingest.count = ingested.total("accepted")
        ingest.worker_peak_mb = peak_rss_mb(gate_worker().pid)
        batch_id = ingested.batch_id
        print(
            f"  ingest: batch {batch_id}, {ingest.count:,} accepted, {ingested.total('quarantined'):,} quarantined",
            flush=True,
        )
        if plain:
            quiet(url)
            ingest.baseline_seconds = raw_copy(url, path)
            with psycopg.connect(plain, autocommit=True) as connection:
                connection.execute("DROP TABLE bare_items")

        quiet(url)
        rounds = rounds_flow_factory()(batch_id, args.max_rounds, plain)
        stages = {"ingest": ingest} | {k: Stage(**v) for k, v in rounds["stages"].items()}

        deliver = Stage("records", baseline="unsigned POSTs")
        quiet(url)
        delivered = deliver.measure(lambda: deliver_flow(DeliverParams(batch_id=batch_id)))
        deliver.count = delivered.sent.records_delivered
        control.send("tally")
        received = control.recv()
        if delivered.prepared_delivery_id is not None:
            deliver.baseline_seconds, pages, size = unsigned_posts(
                page_bodies(resources().sessions, delivered.prepared_delivery_id), endpoint
            )
        else:
            pages = size = 0
        stages["delivery"] = deliver
        reset_resources()
        return {
            "items": args.items,
            "experts": args.experts,
            "database": args.database,
            "file_mb": round(path.stat().st_size / 1e6, 1),
            "batch_status": rounds["status"],
            "rounds": rounds["rounds"],
            "round_detail": rounds["detail"],
            "settled": delivered.settled,
            "pages": pages,
            "page_bytes": size,
            "receiver": received,
            "setup": setup,
            "stages": {k: asdict(v) for k, v in stages.items()},
        }
    finally:
        control.close()
        receiver.terminate()
        drop_database(url)


def report(result: dict[str, Any], wall: float) -> None:
    stages = {k: Stage(**v) for k, v in result["stages"].items()}
    print(
        f"\nPipeline bench: {result['items']:,} items ({result['file_mb']:,.0f} MB JSONL), {result['experts']:,} "
        f"experts, {result['database']}; batch {result['batch_status']} after {result['rounds']} rounds"
    )
    print(
        f"{'stage':<14}{'seconds':>9}{'count':>12}  {'rate':<22}{'peak RSS':>10}{'added':>8}   "
        f"{'baseline':<16}{'seconds':>9}{'ratio':>10}"
    )
    for name, s in stages.items():
        per_second = s.count / s.seconds if s.seconds else 0.0
        rate = f"{per_second:,.{0 if per_second >= 10 else 2}f} {s.unit}/s" if s.count else "-"
        peak = f"{s.peak_mb:,.0f} MB{'+' + format(s.rise_mb, ',.0f'):>8}"
        if s.baseline is not None and s.baseline_seconds:
            base = f"{s.baseline:<16}{s.baseline_seconds:>9.2f}{s.seconds / s.baseline_seconds:>9.2f}x"
        else:
            base = f"{'-':<16}{'-':>9}{'-':>10}"
        print(f"{name:<14}{s.seconds:>9.1f}{s.count:>12,}  {rate:<22}{peak:>18}   {base}")
        if s.worker_peak_mb is not None:
            print(f"{'':<14}{'':>9}{'':>12}  {'gate worker':<22}{s.worker_peak_mb:>7,.0f} MB")
    total = sum(s.seconds for s in stages.values())
    baselines = sum(s.baseline_seconds for s in stages.values())
    measured = sum(s.seconds for s in stages.values() if s.baseline_seconds)
    peak = max(s.peak_mb for s in stages.values())
    items_rate = f"{result['items'] / total:,.0f} items/s"
    print(
        f"{'total':<14}{total:>9.1f}{result['items']:>12,}  {items_rate:<22}{peak:>7,.0f} MB{'':>8}   "
        f"{'sum of above':<16}{baselines:>9.2f}{total / baselines if baselines else 0:>9.2f}x"
    )
    if baselines:
        print(
            f"  stages with a baseline: {measured:.1f} s against {baselines:.1f} s, {measured / baselines:.2f}x "
            f"(the stages without one: {total - measured:.1f} s)"
        )
    received = result["receiver"]
    print(
        f"  delivery: {result['pages']:,} pages, {result['page_bytes'] / 1e6:,.1f} MB; the receiver verified "
        f"{received['unique_messages']:,} pages ({received['records']:,} records) in "
        f"{received['verify_seconds']:.1f} s of its own"
    )
    print(f"  wall time {wall:,.1f} s (set-up, baselines and quiet starts included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--experts", type=int, help="Pool size (default: items / 10, at least 1,000).")
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--chunk-rows", type=int, default=10_000, help="Ingest rows per task.")
    parser.add_argument("--max-rounds", type=int, default=MAX_ROUNDS, help="Rounds before the batch is called blocked.")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()), help="Where the file is kept.")
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures to this file as JSON.")
    args = parser.parse_args()
    args.experts = args.experts or max(1000, args.items // 10)
    started = time.perf_counter()
    path = args.workdir / f"nightshift-bench-pipeline-{args.items}.jsonl"
    make_file(path, args.items)
    result = run(args, path)
    wall = time.perf_counter() - started
    result["wall_seconds"] = wall
    report(result, wall)
    problems = []
    if result["batch_status"] != "passed":
        problems.append(f"the batch ended {result['batch_status']!r}, not passed")
    received, delivered = result["receiver"], result["stages"]["delivery"]["count"]
    if received["rejected"] or received["records"] != delivered:
        problems.append(f"the receiver verified {received['records']:,} of {delivered:,} records")
    result["problems"] = problems
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    if problems:
        raise SystemExit("; ".join(problems))


if __name__ == "__main__":
    main()
