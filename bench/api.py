"""Submissions per second through the expert API, 100 simulated experts at once, on PostgreSQL.

    uv run python bench/api.py                        # 12,000 submissions, 3 runs, 2 server workers
    uv run python bench/api.py --items 300 --repeat 1 --workers 1 --rate 100

Set-up (not timed): a fresh database, the sample project, 100 experts, items with three
annotation tasks each, a personal token per expert, and `nightshift serve --workers N` in its own
processes. Timed per run, 100 concurrent experts (asyncio + aiohttp, one process, one connection
each) POST their answers in two halves:
- back to back, each expert's next answer as soon as the last is stored: the capacity
  (submissions stored / wall time), with each request's latency (p50, p99);
- paced at --rate submissions/s in all (default 500), evenly interleaved across the experts: the
  latency at that load, counted from when each answer was due, so a server that falls behind
  is charged for the wait it causes.
Back to back, 100 experts keep 100 requests in the server at all times, so the mean latency is
100 / throughput by Little's law whatever the server does; the paced half is what an expert
sees at a given load. Baseline in the same run: as many bare `SELECT 1` round trips to the same
PostgreSQL from 40 concurrent connections (what the API's pools hold): the ceiling no API can pass.
Each run also prints how the experts' connections split across the workers.
The load generator is aiohttp rather than httpx: it costs a quarter of the CPU per request, and it
shares the two cores with the server.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("NIGHTSHIFT_HOME", tempfile.mkdtemp(prefix="nightshift-bench-home-"))

from nightshift.resources import prepare_process  # noqa: E402

prepare_process()

import aiohttp  # noqa: E402
import httpx  # noqa: E402
import orjson  # noqa: E402
import psycopg  # noqa: E402

from bench.databases import drop_database, fresh_database  # noqa: E402

EXPERTS = 100
OVERLAP = 3
# As many connections as the API's pools hold (2 workers x 20): PostgreSQL allows 100 in all.
BASELINE_CONNECTIONS = 40
ANSWER = {
    "rating": 5,
    "error_tags": ["reasoning_flaw"],
    "rationale": "The answer ignores the covenant limits stated in the context, so the plan fails.",
    "improved_prompt": "Given the covenant limits in the context, recommend whether to proceed and show the numbers "
    "that drive the decision.",
}


def build(url: str, items: int, workdir: Path) -> dict[str, str]:
    """The project, experts, items and their tasks; returns handle → token."""
    from bench.batches import load_batch
    from nightshift.experts.registry import parse_experts
    from nightshift.platform.db import make_engine, make_sessionmaker, transaction
    from nightshift.platform.keys import issue_key
    from nightshift.platform.migrate import upgrade
    from nightshift.platform.models import Assignment, Expert, Item, utcnow
    from nightshift.platform.sql import insert_ignoring_conflicts
    from nightshift.projects.spec import load_spec
    from nightshift.simulation.synthetic import generate_experts, generate_items

    upgrade(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    experts_file = workdir / "experts.jsonl"
    experts_file.write_text("".join(json.dumps({**e, "capacity": 10_000}) + "\n" for e in generate_experts(EXPERTS)))
    items_file = workdir / "items.jsonl"
    items_file.write_text("".join(json.dumps(i) + "\n" for i in generate_items(items)))
    load_batch(sessions, load_spec(ROOT / "samples" / "spec.yaml"), parse_experts(experts_file)[0], items_file)
    with transaction(sessions) as session:
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


def start_server(url: str, workers: int, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NIGHTSHIFT_DATABASE_URL": url}
    # The service as it is run: `nightshift serve` (uvicorn, each worker on a socket of its own on Linux).
    command = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers)]
    # To a file: a pipe nobody reads fills up, and a worker writing an error to it would hang.
    with log.open("wb") as errors:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=errors)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit(f"the server did not start: {log.read_text()[-2000:]}")


async def expert(
    http: aiohttp.ClientSession, base: str, token: str, tasks: list[int], times: Schedule, results: Results
) -> None:
    """One expert submits its tasks one after another: back to back, or each at its scheduled time."""
    headers = {"Authorization": f"Bearer {token}"}
    for n, assignment in enumerate(tasks):
        due = times(n) if times else None
        if due is not None and (wait := due - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        started = time.perf_counter()
        url = f"{base}/api/expert/assignments/{assignment}/submission"
        async with http.post(url, data=BODY, headers=headers | JSON) as sent:
            await sent.read()
        # From when it was due, not when it went out: a server that falls behind the schedule
        # is charged with the wait it caused (no coordinated omission).
        results.latencies.append(time.perf_counter() - (started if due is None else min(started, due)))
        results.statuses[sent.status] = results.statuses.get(sent.status, 0) + 1


@dataclass
class Results:
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)


Schedule = Callable[[int], float] | None
JSON = {"Content-Type": "application/json"}
BODY = orjson.dumps({"answer": ANSWER})


async def listed_tasks(http: aiohttp.ClientSession, base: str, token: str) -> list[int]:
    headers = {"Authorization": f"Bearer {token}"}
    async with http.get(f"{base}/api/expert/assignments", params={"limit": 500}, headers=headers) as listed:
        return [task["assignment_id"] for task in await listed.json()]


def connections_per_worker(port: int) -> list[int]:
    """How many of the experts' connections each server process holds, largest first (ss)."""
    listed = subprocess.run(
        ["ss", "-Htnp", "state", "established", "sport", "=", f":{port}"], capture_output=True, text=True, check=True
    ).stdout
    held: dict[str, int] = {}
    for line in listed.splitlines():
        if "pid=" in line:
            pid = line.split("pid=", 1)[1].split(",", 1)[0]
            held[pid] = held.get(pid, 0) + 1
    return sorted(held.values(), reverse=True)


async def submissions(base: str, tokens: dict[str, str], rate: float, split: list[int]) -> tuple[Results, Results]:
    """Each expert's tasks split in two: the first half back to back (the capacity), the second at
    `rate` submissions/s across all experts, evenly interleaved (the latency at that load)."""
    # A connection per expert, as people at their own machines have, opened one after another
    # (not timed). With uvicorn's one shared listening socket, the first worker to wake took every
    # connection waiting: 100 opened in the same instant all landed on one worker (~600/s against
    # ~950/s, in a third of the runs), and even one after another split up to 74/26. `nightshift
    # serve` now gives each worker a socket of its own (app/balanced_workers.py).
    experts = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) for _ in tokens]
    try:
        tasks = [await listed_tasks(http, base, token) for http, token in zip(experts, tokens.values(), strict=True)]
        split.extend(connections_per_worker(int(base.rsplit(":", 1)[1])))
        halves = [(mine[: len(mine) // 2], mine[len(mine) // 2 :]) for mine in tasks]
        people = list(zip(experts, tokens.values(), halves, strict=True))
        closed, paced = Results(), Results()
        started = time.perf_counter()
        await asyncio.gather(*(expert(http, base, token, first, None, closed) for http, token, (first, _) in people))
        closed.seconds = time.perf_counter() - started
        start = time.perf_counter() + 0.5

        def at(k: int) -> Schedule:
            return lambda n: start + (n * len(people) + k) / rate

        await asyncio.gather(
            *(expert(http, base, token, second, at(k), paced) for k, (http, token, (_, second)) in enumerate(people))
        )
        paced.seconds = time.perf_counter() - start
    finally:
        await asyncio.gather(*(http.close() for http in experts))
    return closed, paced


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
    parser.add_argument("--items", type=int, default=4_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=500.0, help="Submissions/s of the paced half.")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    figures: dict[str, list[float]] = {}

    def keep(name: str, value: float) -> float:
        figures.setdefault(name, []).append(value)
        return value

    for run in range(args.repeat):
        workdir = Path(tempfile.mkdtemp(prefix="nightshift-bench-api-"))
        url = fresh_database("postgresql", workdir, run)
        try:
            tokens = build(url, args.items, workdir)
            server = start_server(url, args.workers, args.port, workdir / "server.log")
            try:
                split: list[int] = []
                closed, paced = asyncio.run(submissions(f"http://127.0.0.1:{args.port}", tokens, args.rate, split))
            finally:
                server.terminate()
                server.wait(timeout=30)
            stored = closed.statuses.get(201, 0) + paced.statuses.get(201, 0)
            if stored != args.items * OVERLAP:
                raise SystemExit(f"expected {args.items * OVERLAP} stored, got {closed.statuses} and {paced.statuses}")
            base_seconds, base_latencies = asyncio.run(select_one(url, len(closed.latencies), BASELINE_CONNECTIONS))
        finally:
            drop_database(url)
        rate = keep("rate", len(closed.latencies) / closed.seconds)
        ceiling = keep("ceiling", len(closed.latencies) / base_seconds)
        print(
            f"run {run + 1}: back to back {rate:,.0f} submissions/s (p50 {keep('p50', pct(closed.latencies, 0.5)):.1f} "
            f"ms, p99 {keep('p99', pct(closed.latencies, 0.99)):.1f} ms); "
            f"at {args.rate:,.0f}/s: {keep('paced', len(paced.latencies) / paced.seconds):,.0f}/s achieved "
            f"(p50 {keep('paced p50', pct(paced.latencies, 0.5)):.1f} ms, "
            f"p99 {keep('paced p99', pct(paced.latencies, 0.99)):.1f} ms); "
            f"SELECT 1: {ceiling:,.0f}/s (p99 {keep('ceiling p99', pct(base_latencies, 0.99)):.1f} ms); "
            f"connections per worker {'/'.join(map(str, split))}",
            flush=True,
        )
    median = {name: statistics.median(values) for name, values in figures.items()}
    print(
        f"submissions via HTTP, back to back ({EXPERTS} experts, {args.workers} workers)  {median['rate']:,.0f}/s  "
        f"p50 {median['p50']:.1f} ms  p99 {median['p99']:.1f} ms"
    )
    print(
        f"submissions via HTTP at {args.rate:,.0f}/s offered  {median['paced']:,.0f}/s  "
        f"p50 {median['paced p50']:.1f} ms  p99 {median['paced p99']:.1f} ms"
    )
    print(
        f"baseline SELECT 1 round trips {median['ceiling']:,.0f}/s (p99 {median['ceiling p99']:.1f} ms)  "
        f"ratio {median['rate'] / median['ceiling']:.3f}"
    )


if __name__ == "__main__":
    main()
