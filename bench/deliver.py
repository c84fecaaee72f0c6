"""Delivery at scale: 100,000 records to a local receiver, signed and paged, from the outbox.

    uv run python bench/deliver.py                     # 100,000 records, 3 runs
    uv run python bench/deliver.py --records 5000 --repeat 1

PostgreSQL on 127.0.0.1. Set-up (not timed): a passed batch with final answers and three accepted
annotations per item, made in SQL. The receiver runs in its own process (HTTP/1.1 keep-alive, 204
to everything, no verification: the client's cost, not ours). Timed per run: building the records
and files (JSONL + Parquet), the readiness gate (reported apart: it is a quality gate, not
delivery), writing the outbox pages, then sending them: claim, sign, POST, record. Baseline in the
same run: the same page bodies POSTed unsigned, one after another, with one HTTP client.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("NIGHTSHIFT_HOME", tempfile.mkdtemp(prefix="nightshift-bench-home-"))

from nightshift.resources import load_settings, prepare_process  # noqa: E402

prepare_process()

import httpx  # noqa: E402
import psycopg  # noqa: E402
from sqlalchemy import select  # noqa: E402

from bench.databases import drop_database, fresh_database  # noqa: E402

SECRET_ENV = "BENCH_DELIVERY_SECRET"


def serve(port_out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    from http.server import ThreadingHTTPServer

    from app.local_server import QuietHandler

    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.reply(204)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_out.put(server.server_address[1])
    server.serve_forever()


def build_batch(plain: str, records: int) -> None:
    with psycopg.connect(plain, autocommit=True) as connection:
        run = connection.execute
        run(
            "INSERT INTO experts (handle, name, email, timezone, work_start_hour, work_hours, hourly_rate, tier,"
            " capacity, reliability, status) SELECT 'x' || g, 'Expert ' || g, 'x' || g || '@experts.example',"
            " 'UTC', 18, 3, 150, 'annotator', 1000, 0.8, 'active' FROM generate_series(1, 300) g"
        )
        run(
            "INSERT INTO items (project_id, batch_id, external_id, content_hash, language, payload, status) "
            "SELECT 1, 1, 'item-' || g, md5(g::text) || md5(g::text), 'en',"
            " jsonb_build_object('prompt', 'scenario ' || g), 'passed' FROM generate_series(1, %(n)s) g",
            {"n": records},
        )
        run(
            "INSERT INTO assignments (item_id, expert_id, role, status, due_at) "
            "SELECT i.id, 1 + (i.id * 3 + k) % 300, 'annotate', 'accepted', now() "
            "FROM items i CROSS JOIN generate_series(0, 2) k"
        )
        run(
            "INSERT INTO item_results (item_id, answer, method, agreement, submission_ids) "
            "SELECT id, jsonb_build_object('rating', 1 + id % 7, 'error_tags', jsonb_build_array('reasoning_flaw'),"
            " 'rationale', 'The answer misreads the covenant terms and ignores the liquidity assumption in ' || id,"
            " 'improved_prompt', 'State the covenant terms and the liquidity assumption explicitly for ' || id),"
            " jsonb_build_object('rating', jsonb_build_object('method', 'median', 'n', 3)),"
            " 0.667, jsonb_build_array(id * 3, id * 3 + 1, id * 3 + 2) FROM items"
        )
        run("UPDATE batches SET status = 'passed'")
        run("VACUUM ANALYZE")


def reset(plain: str) -> None:
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute("TRUNCATE delivery_attempts, delivery_messages, deliveries, gate_runs CASCADE")
        connection.execute("UPDATE batches SET status = 'passed'")
        connection.execute("UPDATE items SET status = 'passed'")


def one_run(sessions, options, url: str, plain: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from expectations.delivery_readiness import check_delivery_readiness
    from nightshift.delivery import build, outbox, webhooks
    from nightshift.delivery.records import passed_item_ids
    from nightshift.platform.db import transaction
    from nightshift.platform.models import Delivery, DeliveryMessage
    from nightshift.platform.outside import EnvSecretResolver, HttpxPoster
    from nightshift.review.gates import record_gate

    reset(plain)
    figures: dict[str, float] = {}
    started = time.perf_counter()
    with sessions() as session:
        built = build.build_delivery(session, 1, options)
        expected = passed_item_ids(session, 1)
    figures["build"] = time.perf_counter() - started
    started = time.perf_counter()
    outcome = check_delivery_readiness(built, expected)
    figures["gate"] = time.perf_counter() - started
    started = time.perf_counter()
    with transaction(sessions) as session:
        run_id = record_gate(session, 1, outcome)
        delivery_id = outbox.commit_delivery(session, built, options, [{"gate": outcome.gate, "run": run_id}])
    figures["outbox"] = time.perf_counter() - started
    stats = webhooks.SendStats()
    poster = HttpxPoster(30)
    started = time.perf_counter()
    sent = webhooks.send_due(sessions, poster, EnvSecretResolver().resolve, ["127.0.0.1"], stats)
    figures["send"] = time.perf_counter() - started
    figures["sign"], figures["post"] = stats.sign_seconds, stats.post_seconds
    figures["bookkeeping"] = stats.bookkeeping_seconds
    assert sent == len(expected), (sent, len(expected))
    # Baseline: the same bodies as sent, unsigned, one POST after another on one client.
    with sessions() as session:
        record = session.get_one(Delivery, delivery_id)
        manifest_json = json.dumps(record.manifest, sort_keys=True, ensure_ascii=False)
        bodies = [
            webhooks.page_body(record.manifest["event"], manifest_json, page, record.page_count, records).encode()
            for page, records in session.execute(
                select(DeliveryMessage.page, DeliveryMessage.records).where(DeliveryMessage.delivery_id == delivery_id)
            )
        ]
    figures["pages"] = len(bodies)
    figures["bytes"] = sum(len(b) for b in bodies)
    with httpx.Client(timeout=30) as client:
        started = time.perf_counter()
        for body in bodies:
            client.post(url, content=body, headers={"content-type": "application/json"}).raise_for_status()
        figures["baseline"] = time.perf_counter() - started
    poster.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--page-bytes", type=int, default=load_settings().webhook_page_bytes)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="nightshift-bench-deliver-"))
    url = fresh_database("postgresql", workdir, 0)
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    ports: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    receiver = multiprocessing.Process(target=serve, args=(ports,), daemon=True)
    receiver.start()
    endpoint = f"http://127.0.0.1:{ports.get(timeout=30)}/hook"
    try:
        from nightshift.delivery import build, endpoints
        from nightshift.platform.db import make_engine, make_sessionmaker, transaction
        from nightshift.platform.migrate import upgrade
        from nightshift.platform.models import Batch
        from nightshift.projects.registry import apply_spec
        from nightshift.projects.spec import load_spec

        upgrade(url)
        os.environ[SECRET_ENV] = endpoints.new_webhook_secret()
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        spec = load_spec(ROOT / "samples" / "spec.yaml")
        with transaction(sessions) as session:
            apply_spec(session, spec)
            session.add(Batch(project_id=1, source="bench", source_checksum="bench", status="passed", spec_version=1))
        with psycopg.connect(plain, autocommit=True) as connection:
            connection.execute(
                "UPDATE clients SET webhook_url = %s, webhook_secret_ref = %s", (endpoint, f"env:{SECRET_ENV}")
            )
        build_batch(plain, args.records)
        options = build.DeliveryOptions(directory=workdir / "store", page_bytes=args.page_bytes)
        runs = [one_run(sessions, options, endpoint, plain) for _ in range(args.repeat)]
        engine.dispose()
    finally:
        receiver.terminate()
        drop_database(url)

    def median(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    delivered = median("build") + median("outbox") + median("send")
    overhead = median("sign") + median("outbox") + median("bookkeeping")
    n = args.records
    print(
        f"records {n:,}; {int(median('pages'))} pages of <= {args.page_bytes:,} bytes, {median('bytes') / 1e6:.1f} MB"
    )
    print(f"runs {args.repeat}; medians (s)")
    for key in ("build", "gate", "outbox", "sign", "post", "bookkeeping", "send", "baseline"):
        print(f"  {key:<12} {median(key):8.3f}")
    print(f"deliver (build + outbox + send)   {n / delivered:>10,.0f} records/s")
    print(f"  with the readiness gate         {n / (delivered + median('gate')):>10,.0f} records/s")
    print(f"  sending alone                   {n / median('send'):>10,.0f} records/s")
    print(f"baseline: unsigned POSTs          {n / median('baseline'):>10,.0f} records/s")
    print(f"ratio sending / baseline          {median('baseline') / median('send'):10.2f}")
    print(f"ratio deliver / baseline          {median('baseline') / delivered:10.2f}")
    print(
        "share of deliver time: "
        + ", ".join(
            f"{k} {v / delivered:.0%}"
            for k, v in (
                ("build", median("build")),
                ("outbox", median("outbox")),
                ("sign", median("sign")),
                ("post", median("post")),
                ("bookkeeping", median("bookkeeping")),
            )
        )
    )
    print(f"signing and bookkeeping (sign + outbox + claims/records): {overhead / delivered:.0%} (target < 25%)")


if __name__ == "__main__":
    main()
