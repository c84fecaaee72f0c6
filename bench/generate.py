"""Generation against the local model server: the generate flow against a bare async client.

    uv run python bench/generate.py --prompts 100000          # PostgreSQL on 127.0.0.1

The model server runs in a process of its own (each answer delayed --delay-ms, as a model's
latency). In the same run, on the same server and the same prompts:
- baseline: the `openai` SDK's async client (on aiohttp) asking every prompt, --concurrency at
  once, nothing stored (the most a client can get from this server on this machine);
- generate flow: the real flow (Prefect, chunks, the database, every answer stored), the
  endpoint's max_concurrent set to the same --concurrency.
Prints both rates, their ratio, and this process's resident memory across the flow's run (early
against late), which stays flat when a chunk's answers are written as they come.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("NIGHTSHIFT_HOME", tempfile.mkdtemp(prefix="nightshift-bench-home-"))
os.environ.setdefault("NIGHTSHIFT_GATE_WORKER_IDLE_SECONDS", "0")

from nightshift.resources import prepare_process  # noqa: E402

prepare_process()

from bench import prefect_server  # noqa: E402

prefect_server.use_postgres()

from bench.databases import drop_database, fresh_database, quiet  # noqa: E402
from nightshift.simulation.synthetic import generate_items  # noqa: E402

MODEL = "nightshift-sim"


def start_model_server(delay_ms: int) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "app.cli", "model-server", "--port", str(port), "--delay-ms", str(delay_ms)]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("the model server did not start")


def make_file(path: Path, prompts: int) -> None:
    if not path.exists():
        with path.open("w") as out:
            for item in generate_items(prompts, seed=4321, text_bytes=600, prefix="gen"):
                out.write(json.dumps(item) + "\n")


def bare_client(url: str, path: Path, concurrency: int) -> float:
    """Seconds for the SDK's async client to get every prompt answered, nothing stored."""
    import openai

    prompts = [json.loads(line)["prompt"] for line in path.open()]

    async def run() -> None:
        # The SDK on aiohttp, as the flow's client: on httpx the client's own CPU is the limit.
        client = openai.AsyncOpenAI(
            base_url=url, api_key="not-needed", max_retries=3, http_client=openai.DefaultAioHttpClient()
        )
        todo = iter(prompts)

        async def worker() -> None:
            for prompt in todo:
                done = await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": prompt}])
                assert done.choices[0].message.content

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        await client.close()

    started = time.perf_counter()
    asyncio.run(run())
    return time.perf_counter() - started


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc")


class Sampler:
    """This process's resident memory every quarter second while the flow runs."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            self.samples.append(rss_mb())

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def deciles(self) -> list[float]:
        """The peak of each tenth of the run."""
        tenth = max(1, len(self.samples) // 10)
        return [max(self.samples[i : i + tenth] or [0.0]) for i in range(0, tenth * 10, tenth)]


def one_run(args: argparse.Namespace, url_model: str, path: Path, run: int) -> dict[str, float]:
    url = fresh_database(args.database, args.workdir, run)
    os.environ["NIGHTSHIFT_DATABASE_URL"] = url
    try:
        from flows.generate import GenerateParams, generate_flow
        from flows.ingest import IngestParams, ingest_flow
        from nightshift.platform.db import make_engine, make_sessionmaker, transaction
        from nightshift.platform.migrate import upgrade
        from nightshift.projects.registry import apply_spec
        from nightshift.projects.spec import ProjectSpec, load_spec
        from tasks.runtime import reset_resources

        reset_resources()
        upgrade(url)
        data = load_spec(ROOT / "samples" / "spec.yaml").model_dump(mode="json")
        data["project"]["generation"] = {
            "prompt_field": "prompt",
            "endpoints": [{"name": "local", "base_url": url_model, "model": MODEL, "max_concurrent": args.concurrency}],
        }
        engine = make_engine(url)
        with transaction(make_sessionmaker(engine)) as session:
            apply_spec(session, ProjectSpec.model_validate(data))
        engine.dispose()
        batch = ingest_flow(IngestParams(project="acme-scenarios", source=str(path), generate=False)).batch_id
        figures = {"bare": bare_client(url_model, path, args.concurrency)}
        quiet(url)
        with Sampler() as sampler:
            started = time.perf_counter()
            result = generate_flow(GenerateParams(batch_id=batch, chunk_size=args.chunk_size))
            figures["flow"] = time.perf_counter() - started
        figures["answered"] = result.endpoints[0].items_answered
        for tenth, peak in enumerate(sampler.deciles()):
            figures[f"rss_{tenth}"] = peak
        return figures
    finally:
        drop_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=32, help="Requests at once, both clients.")
    parser.add_argument("--delay-ms", type=int, default=20, help="The model server's latency per answer.")
    parser.add_argument("--chunk-size", type=int, default=10_000)
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--repeat", type=int, default=3, help="Runs, each on a fresh database; medians are shown.")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    path = args.workdir / f"nightshift-bench-prompts-{args.prompts}.jsonl"
    make_file(path, args.prompts)
    server, url_model = start_model_server(args.delay_ms)
    try:
        runs = [one_run(args, url_model, path, run) for run in range(args.repeat)]
    finally:
        server.terminate()
        server.wait(10)

    def median(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    ratios = [r["bare"] / r["flow"] for r in runs]
    print(
        f"\nGenerate bench: {args.prompts:,} prompts, {args.concurrency} at once, model latency "
        f"{args.delay_ms} ms, {args.database}, chunks of {args.chunk_size}, median of {args.repeat}"
    )
    print(f"  bare async client    {median('bare'):8.1f} s  {args.prompts / median('bare'):8,.0f} answers/s")
    print(
        f"  generate flow        {median('flow'):8.1f} s  {args.prompts / median('flow'):8,.0f} answers/s  "
        f"(stored {median('answered'):,.0f})"
    )
    each = ", ".join(f"{x:.2f}" for x in ratios)
    print(f"  ratio to bare client {statistics.median(ratios):8.2f}  (target >= 0.9; each run: {each})")
    tenths = " ".join(f"{median(f'rss_{t}'):.0f}" for t in range(10))
    growth = median("rss_9") - median("rss_1")
    print(f"  RSS by tenth of run  {tenths} MB  (second to last tenth: {growth:+.0f} MB)")


if __name__ == "__main__":
    main()
