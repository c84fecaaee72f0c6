"""Submissions per second through the expert API, 100 simulated experts at once, on PostgreSQL.

    uv run python bench/api.py                        # 6,000 submissions, 3 runs, 2 server workers
    uv run python bench/api.py --items 300 --repeat 1 --workers 1

Set-up (not timed): a fresh database, the sample project, 100 experts, items with three
annotation tasks each, a personal token per expert, and `nightshift serve` in its own processes
(uvicorn, --workers N). Timed per run: 100 concurrent experts (asyncio + httpx, one process)
each POST every answer of theirs, one after another; throughput is submissions stored / wall
time, latency per request (p50, p99). Baseline in the same run: as many bare `SELECT 1` round
trips to the same PostgreSQL from 30 concurrent connections (what the API's pools may
open): the ceiling no API can pass.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("NIGHTSHIFT_HOME", tempfile.mkdtemp(prefix="nightshift-bench-home-"))

from nightshift.settings import Settings  # noqa: E402

Settings().prepare_process_environment()

import httpx  # noqa: E402
import psycopg  # noqa: E402

from bench.databases import drop_database, fresh_database  # noqa: E402

EXPERTS = 100
OVERLAP = 3
# As many connections as the API's pools may open (2 workers x 15): PostgreSQL allows 100 in all.
BASELINE_CONNECTIONS = 30
ANSWER = {
    "rating": 5,
    "error_tags": ["reasoning_flaw"],
    "rationale": "The answer ignores the covenant limits stated in the context, so the plan fails.",
    "improved_prompt": "Given the covenant limits in the context, recommend whether to proceed and show the numbers "
    "that drive the decision.",
}


def build(url: str, items: int, workdir: Path) -> dict[str, str]:
    """The project, experts, items and their tasks; returns handle → token."""
    from nightshift.db import make_engine, make_sessionmaker, transaction
    from nightshift.experts import import_experts, parse_experts
    from nightshift.ingest import load_chunk, mark_ingest_complete, open_batch
    from nightshift.keys import issue_key
    from nightshift.migrate import upgrade
    from nightshift.models import Assignment, Expert, Item, utcnow
    from nightshift.projects import apply_spec
    from nightshift.spec import load_spec
    from nightshift.sql import insert_ignoring_conflicts
    from nightshift.synthetic import generate_experts, generate_items

    upgrade(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    experts_file = workdir / "experts.jsonl"
    experts_file.write_text("".join(json.dumps({**e, "capacity": 10_000}) + "\n" for e in generate_experts(EXPERTS)))
    items_file = workdir / "items.jsonl"
    items_file.write_text("".join(json.dumps(i) + "\n" for i in generate_items(items)))
    from nightshift.formats import read_chunks

    with transaction(sessions) as session:
        apply_spec(session, load_spec(ROOT / "samples" / "spec.yaml"))
        import_experts(session, parse_experts(experts_file)[0])
        batch_id = open_batch(session, "acme-scenarios", items_file, "jsonl").batch_id
    for rows, _ in read_chunks(items_file, "jsonl", False, 5_000):
        with transaction(sessions) as session:
            load_chunk(session, batch_id, str(items_file), rows)
    with transaction(sessions) as session:
        mark_ingest_complete(session, batch_id)
        item_ids = list(session.scalars(Item.__table__.select().with_only_columns(Item.id).order_by(Item.id)))
        expert_ids = dict(session.execute(Expert.__table__.select().with_only_columns(Expert.handle, Expert.id)).all())
        ids = list(expert_ids.values())
        due = utcnow().replace(year=utcnow().year + 1)
        rows = [
            {"item_id": item, "expert_id": ids[(n * OVERLAP + k) % len(ids)], "role": "annotate", "due_at": due}
            for n, item in enumerate(item_ids)
            for k in range(OVERLAP)
        ]
        insert_ignoring_conflicts(session, Assignment, rows, ["item_id", "expert_id", "role"])
        tokens = {handle: issue_key(session, "expert", eid).key for handle, eid in expert_ids.items()}
    engine.dispose()
    return tokens


def start_server(url: str, workers: int, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NIGHTSHIFT_DATABASE_URL": url}
    command = [sys.executable, "-m", "uvicorn", "app.web:app_from_environment", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--no-access-log"]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit(f"the server did not start: {server.stderr.read().decode()[-2000:] if server.stderr else ''}")


async def expert(base: str, token: str, latencies: list[float], statuses: dict[int, int]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
        listed = await http.get("/api/expert/assignments", params={"limit": 500})
        for task in listed.json():
            started = time.perf_counter()
            sent = await http.post(
                f"/api/expert/assignments/{task['assignment_id']}/submission", json={"answer": ANSWER}
            )
            latencies.append(time.perf_counter() - started)
            statuses[sent.status_code] = statuses.get(sent.status_code, 0) + 1


async def submissions(base: str, tokens: dict[str, str]) -> tuple[float, list[float], dict[int, int]]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    started = time.perf_counter()
    await asyncio.gather(*(expert(base, token, latencies, statuses) for token in tokens.values()))
    return time.perf_counter() - started, latencies, statuses


async def select_one(url: str, total: int, connections: int) -> tuple[float, list[float]]:
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    latencies: list[float] = []

    async def worker(n: int) -> None:
        async with await psycopg.AsyncConnection.connect(plain, autocommit=True) as connection:
            for _ in range(n):
                started = time.perf_counter()
                await (await connection.execute("SELECT 1")).fetchone()
                latencies.append(time.perf_counter() - started)

    share = [total // connections + (1 if i < total % connections else 0) for i in range(connections)]
    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in share))
    return time.perf_counter() - started, latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    rates, p50s, p99s, ceilings, ceiling_p99s = [], [], [], [], []
    for run in range(args.repeat):
        workdir = Path(tempfile.mkdtemp(prefix="nightshift-bench-api-"))
        url = fresh_database("postgresql", workdir, run)
        try:
            tokens = build(url, args.items, workdir)
            server = start_server(url, args.workers, args.port)
            try:
                seconds, latencies, statuses = asyncio.run(submissions(f"http://127.0.0.1:{args.port}", tokens))
            finally:
                server.terminate()
                server.wait(timeout=30)
            stored = statuses.get(201, 0)
            if stored != args.items * OVERLAP:
                raise SystemExit(f"expected {args.items * OVERLAP} submissions stored, got statuses {statuses}")
            base_seconds, base_latencies = asyncio.run(select_one(url, stored, BASELINE_CONNECTIONS))
        finally:
            drop_database(url)
        rates.append(stored / seconds)
        p50s.append(pct(latencies, 0.50))
        p99s.append(pct(latencies, 0.99))
        ceilings.append(stored / base_seconds)
        ceiling_p99s.append(pct(base_latencies, 0.99))
        print(
            f"run {run + 1}: {rates[-1]:,.0f} submissions/s (p50 {p50s[-1]:.1f} ms, p99 {p99s[-1]:.1f} ms); "
            f"SELECT 1: {ceilings[-1]:,.0f}/s (p99 {ceiling_p99s[-1]:.1f} ms)",
            flush=True,
        )
    rate, ceiling = statistics.median(rates), statistics.median(ceilings)
    print(
        f"submissions via HTTP ({EXPERTS} experts, {args.workers} workers)  {rate:,.0f}/s  "
        f"p50 {statistics.median(p50s):.1f} ms  p99 {statistics.median(p99s):.1f} ms  |  "
        f"baseline SELECT 1 round trips {ceiling:,.0f}/s (p99 {statistics.median(ceiling_p99s):.1f} ms)  "
        f"ratio {rate / ceiling:.3f}"
    )


if __name__ == "__main__":
    main()
