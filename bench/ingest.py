"""Ingest at scale: the real ingest flow against a raw psycopg COPY of the same rows (the ceiling).

    uv run python bench/ingest.py --items 1000000                 # PostgreSQL on 127.0.0.1
    uv run python bench/ingest.py --items 100000 --database sqlite

Prints items/s for the flow (validation and the GX chunk gate on), the ratio to raw COPY measured
in the same run, peak RSS of this process and of the gate's worker process (where Great
Expectations runs), and two re-runs of the same file: the default (a completed file is recognised
by checksum and skipped) and --force (every row read and matched).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("NIGHTSHIFT_HOME", tempfile.mkdtemp(prefix="nightshift-bench-home-"))
# The gate's worker is this run's own: measured from its start, and gone with the bench.
os.environ.setdefault("NIGHTSHIFT_GATE_WORKER_IDLE_SECONDS", "0")

from nightshift.resources import prepare_process  # noqa: E402

prepare_process()

from bench import prefect_server  # noqa: E402

prefect_server.use_postgres()

import psycopg  # noqa: E402

from bench.databases import drop_database, fresh_database, quiet  # noqa: E402
from nightshift.simulation.synthetic import generate_items  # noqa: E402


def make_file(path: Path, items: int) -> None:
    if path.exists():
        return
    with path.open("w") as out:
        for item in generate_items(items, seed=1234, text_bytes=1300, prefix="bench"):
            out.write(json.dumps(item) + "\n")


def raw_copy(url: str, path: Path) -> float:
    """psycopg COPY of every line into a bare table (id text, payload jsonb): no validation, no keys."""
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    started = time.perf_counter()
    with psycopg.connect(plain) as connection, connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bare_items (external_id text, payload jsonb)")
        with cursor.copy("COPY bare_items (external_id, payload) FROM STDIN") as copy, path.open("rb") as handle:
            for line in handle:
                copy.write_row((line[16:40].decode(), line.decode()))
        connection.commit()
    return time.perf_counter() - started


def peak_rss_mb(pid: int | None = None) -> float:
    """The high-water mark of a process's resident memory (VmHWM), in MB."""
    for line in Path(f"/proc/{pid or 'self'}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc")


def one_run(args: argparse.Namespace, path: Path, run: int) -> dict[str, float]:
    url = fresh_database(args.database, args.workdir, run)
    os.environ["NIGHTSHIFT_DATABASE_URL"] = url
    try:
        from flows.ingest import IngestParams, ingest_flow
        from nightshift.platform.db import make_engine, make_sessionmaker, transaction
        from nightshift.platform.migrate import upgrade
        from nightshift.projects.registry import apply_spec
        from nightshift.projects.spec import load_spec
        from tasks.ingest import gate_worker
        from tasks.runtime import reset_resources

        reset_resources()
        upgrade(url)
        engine = make_engine(url)
        with transaction(make_sessionmaker(engine)) as session:
            apply_spec(session, load_spec(ROOT / "samples" / "spec.yaml"))
        engine.dispose()
        params = IngestParams(project="acme-scenarios", source=str(path), chunk_rows=args.chunk_rows)
        ingest_flow(IngestParams(project="acme-scenarios", source=str(ROOT / "samples" / "items.jsonl")))
        figures: dict[str, float] = {"rss_before": peak_rss_mb()}
        quiet(url)
        started = time.perf_counter()
        result = ingest_flow(params)
        figures["first"] = time.perf_counter() - started
        figures["accepted"] = result.total("accepted")
        figures["peak"] = peak_rss_mb()
        figures["worker_peak"] = peak_rss_mb(gate_worker().pid)
        quiet(url)
        started = time.perf_counter()
        ingest_flow(params)
        figures["skipped"] = time.perf_counter() - started
        started = time.perf_counter()
        forced = ingest_flow(params.model_copy(update={"force": True}))
        figures["forced"] = time.perf_counter() - started
        figures["forced_duplicates"] = forced.total("duplicates")
        if args.database == "postgresql":
            quiet(url)
            figures["raw"] = raw_copy(url, path)
        return figures
    finally:
        drop_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--chunk-rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="Runs, each on a fresh database; medians are shown.")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    path = args.workdir / f"nightshift-bench-{args.items}.jsonl"
    make_file(path, args.items)
    size_mb = path.stat().st_size / 1e6
    runs = [one_run(args, path, run) for run in range(args.repeat)]

    def median(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    first, accepted = median("first"), median("accepted")
    print(
        f"\nIngest bench: {args.items:,} items, {size_mb:,.0f} MB JSONL, {args.database}, "
        f"chunks of {args.chunk_rows}, median of {args.repeat}"
    )
    print(f"  ingest flow          {first:8.1f} s  {accepted / first:10,.0f} items/s  (accepted {accepted:,.0f})")
    if args.database == "postgresql":
        raw = median("raw")
        ratios = [(r["accepted"] / r["first"]) / (args.items / r["raw"]) for r in runs]
        print(f"  raw COPY (ceiling)   {raw:8.1f} s  {args.items / raw:10,.0f} rows/s")
        each = ", ".join(f"{x:.2f}" for x in ratios)
        print(f"  ratio to raw COPY    {statistics.median(ratios):8.2f}  (each run: {each})")
    skipped = statistics.median(r["skipped"] / r["first"] for r in runs)
    forced = statistics.median(r["forced"] / r["first"] for r in runs)
    print(f"  re-run, skipped      {median('skipped'):8.1f} s  ({skipped:.3f} of the first run)")
    print(
        f"  re-run, --force      {median('forced'):8.1f} s  ({forced:.2f} of the first run; "
        f"{median('forced_duplicates'):,.0f} duplicates)"
    )
    # A high-water mark never falls, so only the first run tells what the big file adds.
    first_run = runs[0]
    print(
        f"  peak RSS             {first_run['peak']:8.0f} MB  (first run; {first_run['rss_before']:.0f} MB before the "
        f"big file, so the file added {first_run['peak'] - first_run['rss_before']:.0f} MB)"
    )
    print(
        f"  gate worker peak RSS {first_run['worker_peak']:8.0f} MB  (Great Expectations' process; both "
        f"together {first_run['peak'] + first_run['worker_peak']:.0f} MB)"
    )


if __name__ == "__main__":
    main()
