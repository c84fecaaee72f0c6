"""Small work: the wall time of `nightshift ingest` of 1,000 and 10,000 items, as ops type it.

    uv run python bench/small.py                 # PostgreSQL on 127.0.0.1
    uv run python bench/small.py --repeat 5

Each command is the real entry point in a process of its own, on a new file. Beside them, in the
same run, the floor of any command: `python -c "import nightshift"`. Three set-ups:
- server: PREFECT_API_URL names a running Prefect server (started here, on PostgreSQL);
- local: no PREFECT_API_URL, the defaults: the first command starts the state folder's local
  Prefect API and the gate's worker, the next ones find both warm;
- per-command: no PREFECT_API_URL and both idle times 0: each command starts Prefect's temporary
  server and its own gate worker, as every command did before the local API.
For each: the first command of the set-up (cold), then the median of --repeat more of each size,
and a re-run of a file already ingested (recognised and skipped).

A new state folder's Prefect database is migrated once, before timing (a one-off of its own,
printed apart); each set-up copies it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.databases import drop_database, fresh_database  # noqa: E402
from nightshift.simulation.synthetic import generate_items  # noqa: E402

SIZES = (1000, 10_000)


def write_items(path: Path, count: int, prefix: str) -> Path:
    with path.open("w") as out:
        for item in generate_items(count, seed=7, text_bytes=1300, prefix=prefix):
            out.write(json.dumps(item) + "\n")
    return path


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[2:])} failed: {done.stderr.strip()[-500:]}")
    return elapsed


def nightshift(*args: str) -> list[str]:
    return [sys.executable, "-m", "app.cli", *args]


def stop_background(home: Path) -> None:
    """Nothing a set-up left running is there for the next one."""
    for record in ("prefect-api.json", "gate-worker.json"):
        path = home / "run" / record
        if path.exists():
            with contextlib.suppress(ProcessLookupError, ValueError, KeyError):
                os.kill(int(json.loads(path.read_text())["pid"]), signal.SIGTERM)
    time.sleep(1)


def migrated_prefect_home(workdir: Path, env: dict[str, str]) -> tuple[Path, float]:
    home = workdir / "prefect-template"
    started = time.perf_counter()
    subprocess.run(
        [str(Path(sys.executable).parent / "prefect"), "server", "database", "upgrade", "-y"],
        env={k: v for k, v in env.items() if k != "PREFECT_API_URL"} | {"PREFECT_HOME": str(home)},
        check=True,
        capture_output=True,
        timeout=600,
    )
    return home, time.perf_counter() - started


def run_setup(name: str, env: dict[str, str], files: Path, repeat: int, project: str) -> dict[str, float]:
    def ingest(size: int, tag: str) -> float:
        path = write_items(files / f"{name}-{tag}-{size}.jsonl", size, f"{name}-{tag}-{size}")
        return timed(nightshift("ingest", str(path), "--project", project), env)

    figures = {"first 1,000": ingest(1000, "first")}
    for size in SIZES:
        figures[f"{size:,}"] = statistics.median(ingest(size, f"r{i}") for i in range(repeat))
    again = files / f"{name}-r0-1000.jsonl"
    figures["skip 1,000"] = timed(nightshift("ingest", str(again), "--project", project), env)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--setups", default="server,local,per-command")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="nightshift-bench-small-", dir=args.workdir))
    files = workdir / "files"
    files.mkdir()
    url = fresh_database(args.database, workdir, 0)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("NIGHTSHIFT_", "PREFECT_"))}
    base |= {"NIGHTSHIFT_DATABASE_URL": url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    setup_home = workdir / "setup-home"
    subprocess.run(nightshift("db", "upgrade"), env=base | {"NIGHTSHIFT_HOME": str(setup_home)}, cwd=ROOT, check=True)
    spec = ROOT / "samples" / "spec.yaml"
    subprocess.run(
        nightshift("project", "apply", str(spec)),
        env=base | {"NIGHTSHIFT_HOME": str(setup_home)},
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    project = "acme-scenarios"
    template, migrate_seconds = migrated_prefect_home(workdir, base)

    results: dict[str, dict[str, float]] = {}
    imports = [timed([sys.executable, "-c", "import nightshift"], base) for _ in range(max(3, args.repeat))]
    helps = [timed(nightshift("--help"), base) for _ in range(max(3, args.repeat))]
    try:
        for name in args.setups.split(","):
            home = workdir / f"home-{name}"
            shutil.copytree(template, home / "prefect")
            env = base | {"NIGHTSHIFT_HOME": str(home), "PREFECT_HOME": str(home / "prefect")}
            if name == "server":
                if "PREFECT_API_URL" not in os.environ:
                    from bench import prefect_server

                    prefect_server.use_postgres()
                env["PREFECT_API_URL"] = os.environ["PREFECT_API_URL"]
            elif name == "per-command":
                env |= {"NIGHTSHIFT_LOCAL_PREFECT_IDLE_SECONDS": "0", "NIGHTSHIFT_GATE_WORKER_IDLE_SECONDS": "0"}
            elif name != "local":
                raise SystemExit(f"unknown set-up {name!r}: server, local or per-command")
            try:
                results[name] = run_setup(name, env, files, args.repeat, project)
            finally:
                stop_background(home)
    finally:
        drop_database(url)
        shutil.rmtree(workdir, ignore_errors=True)

    floor = statistics.median(imports)
    print(f"\npython -c 'import nightshift': {floor:.2f} s (median of {len(imports)}), the floor of every command")
    print(f"nightshift --help: {statistics.median(helps):.2f} s")
    print(f"a new state folder's Prefect database, migrated once: {migrate_seconds:.1f} s (not in the figures below)")
    columns = list(next(iter(results.values())))
    print(
        f"\n{'set-up':<12}" + "".join(f"{c:>14}" for c in columns) + "   (seconds; medians of "
        f"{args.repeat} but 'first' and 'skip')"
    )
    for name, figures in results.items():
        print(f"{name:<12}" + "".join(f"{figures[c]:>14.2f}" for c in columns))
    print(f"{'/ import':<12}" + "".join(f"{'':>14}" for _ in columns))
    for name, figures in results.items():
        print(f"{name:<12}" + "".join(f"{figures[c] / floor:>13.1f}x" for c in columns))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"small-{stamp}.json").write_text(
        json.dumps({"import_nightshift": floor, "help": statistics.median(helps), "setups": results}, indent=2)
    )


if __name__ == "__main__":
    main()
