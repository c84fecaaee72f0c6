"""The local stack in one command (`nightshift stack`): a Prefect server with its UI, the
concurrency limits, the process work pool, every deployment of prefect.yaml, workers, and the web
service; all stopped together on Ctrl-C.

It runs the same commands production does (see docs/operations.md, Production), on one machine,
so the tests of scale-out start their stack with it too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

ROOT = Path(__file__).resolve().parent.parent
WORK_POOL = "nightshift"


class StackError(RuntimeError):
    pass


@dataclass
class LocalStack:
    home: Path
    port: int = 4200
    workers: int = 1
    # Flow runs one worker runs at once.
    worker_limit: int = 4
    web_port: int | None = 8000
    # How often a worker asks the server for runs (Prefect's default is 10 s).
    worker_poll_seconds: float = 10.0
    # False keeps schedules from starting runs on their own (tests trigger what they check).
    schedules: bool = True
    # The Prefect server's own database (postgresql+asyncpg://…), as production runs it; unset,
    # a SQLite file in its home, where concurrent runs wait seconds for their state writes.
    server_database_url: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    _processes: list[tuple[str, subprocess.Popen[bytes], IO[bytes]]] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def logs(self) -> Path:
        return self.home / "stack-logs"

    def environment(self) -> dict[str, str]:
        """What every process of the stack sees: the server's API and the project checkout."""
        env = os.environ | {
            "PREFECT_API_URL": self.api_url,
            "PREFECT_UI_URL": f"http://127.0.0.1:{self.port}",
            "NIGHTSHIFT_PREFECT_UI_URL": f"http://127.0.0.1:{self.port}",
            "NIGHTSHIFT_PROJECT_DIR": str(ROOT),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_WORKER_QUERY_SECONDS": str(self.worker_poll_seconds),
            "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "true" if self.schedules else "false",
            # The stack's logs say which worker took which run (the CLI keeps its own console quiet).
            "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "INFO",
        }
        env.setdefault("PREFECT_HOME", str(self.home / "prefect"))
        return env | self.env

    def start(self) -> LocalStack:
        self.logs.mkdir(parents=True, exist_ok=True)
        try:
            server_env = {"PREFECT_SERVER_DATABASE_CONNECTION_URL": self.server_database_url}
            self._spawn(
                "server",
                [*_prefect(), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
                server_env if self.server_database_url else None,
            )
            self._wait_for_server()
            self.run([sys.executable, "-m", "app.cli", "limits", "apply"])
            self.run([*_prefect(), "work-pool", "create", WORK_POOL, "--type", "process", "--overwrite"])
            self.run([*_prefect(), "--no-prompt", "deploy", "--all"])
            for number in range(1, self.workers + 1):
                self._spawn(
                    f"worker-{number}",
                    [
                        *_prefect(),
                        "worker",
                        "start",
                        "--pool",
                        WORK_POOL,
                        "--name",
                        f"nightshift-worker-{number}",
                        "--limit",
                        str(self.worker_limit),
                    ],
                )
            if self.web_port is not None:
                self._spawn("web", [sys.executable, "-m", "app.cli", "serve", "--port", str(self.web_port)])
        except BaseException:
            self.stop()
            raise
        return self

    def run(self, command: list[str]) -> str:
        """One set-up command against the stack's server; its output, or StackError with it."""
        done = subprocess.run(command, cwd=ROOT, env=self.environment(), capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise StackError(f"{' '.join(command[-4:])} failed: {(done.stderr or done.stdout)[-2000:]}")
        return done.stdout

    def exited(self) -> list[str]:
        """The stack's processes that have stopped on their own."""
        return [name for name, process, _ in self._processes if process.poll() is not None]

    def log_of(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        """Stop every process the stack started, and theirs: the server's own workers, the flow
        runs a worker started. Each child leads a process group of its own, so one signal reaches
        all it started; what has not ended after the grace period is killed, group and stragglers."""
        started = [process for _, process, _ in self._processes]
        family = {pid for process in started for pid in _descendants(process.pid)}
        # Workers first, so no run starts against a server that is going away.
        for process in reversed(started):
            if process.poll() is None:
                _signal_group(process.pid, signal.SIGINT)
        for _, process, log in reversed(self._processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait()
            log.close()
        for pid in family | {pid for process in started for pid in _descendants(process.pid)}:
            _kill_if_alive(pid)
        self._processes.clear()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, name: str, command: list[str], extra_env: dict[str, str] | None = None) -> None:
        log = (self.logs / f"{name}.log").open("wb")
        # A session (and process group) of its own: stopping it reaches every process it starts.
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.environment() | (extra_env or {}),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._processes.append((name, process, log))

    def _wait_for_server(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        server = self._processes[0][1]
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise StackError(f"the Prefect server exited: {self.log_of('server')[-2000:]}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise StackError(f"the Prefect server did not answer on {self.api_url} within {timeout:.0f} s")


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _kill_if_alive(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def _descendants(pid: int) -> set[int]:
    """Every process below pid, from /proc (a flow run may start a session of its own)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: the parent id follows the last ')'.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


def stop_on_termination() -> None:
    """SIGTERM and SIGHUP end the stack's command as Ctrl-C does, so its children are stopped too
    (by default SIGTERM ends the process at once and leaves them running)."""

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)


def _prefect() -> list[str]:
    return [sys.executable, "-m", "prefect"]
