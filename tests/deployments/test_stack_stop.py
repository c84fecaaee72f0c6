"""`nightshift stack` stopped by SIGTERM (as a service manager stops it) or Ctrl-C leaves no process
of its own behind: not the Prefect server, not a worker, not the web service, nor what they started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _descendants(pid: int) -> set[int]:
    """Every process below pid, read from /proc by the test itself (ppid is field 4 of stat)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead, only not yet reaped by its parent.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.timeout(400)
@pytest.mark.parametrize("signum", [signal.SIGTERM])
def test_a_terminated_stack_leaves_no_child_running(tmp_path: Path, prefect_server_database: str, signum: int) -> None:
    port, web_port = _free_port(), _free_port()
    env = os.environ | {
        "NIGHTSHIFT_HOME": str(tmp_path / "home"),
        "PREFECT_HOME": str(tmp_path / "home" / "prefect"),
        # The stack's server on a migrated copy of Prefect's schema: up in seconds.
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": prefect_server_database,
    }
    env.pop("NIGHTSHIFT_DATABASE_URL", None)
    env.pop("PREFECT_API_URL", None)
    command = [sys.executable, "-m", "app.cli", "stack", "--port", str(port), "--web-port", str(web_port)]
    stack = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert stack.poll() is None, stack.stdout.read().decode()[-3000:] if stack.stdout else ""
            try:
                if httpx.get(f"http://127.0.0.1:{web_port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        else:
            pytest.fail("the stack did not come up")
        children = _descendants(stack.pid)
        # The server, the worker, the web service, and what each of them started.
        assert len(children) >= 3, children
        stack.send_signal(signum)
        assert stack.wait(timeout=60) is not None
        time.sleep(1)
        survivors = [pid for pid in children if _alive(pid)]
        assert not survivors, survivors
    finally:
        if stack.poll() is None:
            stack.kill()
        for pid in _descendants(stack.pid):
            os.kill(pid, signal.SIGKILL)
