"""The web service's connection handling, seen from a raw socket."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from app import balanced_workers
from app.web import KEEP_ALIVE_SECONDS, ServiceThread, create_app
from nightshift import resources as root
from tests.app.test_cli_errors import nightshift

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def _response(conn: socket.socket) -> bytes:
    got = b""
    while b"\r\n\r\n" not in got or not got.endswith(b"}"):
        chunk = conn.recv(4096)
        if not chunk:
            return got
        got += chunk
    return got


def test_a_connection_idle_longer_than_a_client_keeps_one_is_still_served(tmp_path: Path) -> None:
    # httpx and most clients drop an idle pooled connection after 5 s; a server closing at the same
    # moment races a client's next request (a reset POST). The service must close well after them.
    assert KEEP_ALIVE_SECONDS > 5
    settings = root.load_settings(database_url=f"sqlite:///{tmp_path / 'unused.db'}", home=tmp_path / "home")
    with ServiceThread(create_app(root.build(settings))) as server:
        address = urlsplit(server.url)
        with socket.create_connection((address.hostname, address.port), timeout=10) as conn:
            conn.sendall(REQUEST)
            assert _response(conn).startswith(b"HTTP/1.1 200")
            time.sleep(6)
            conn.sendall(REQUEST)
            assert _response(conn).startswith(b"HTTP/1.1 200"), "the service closed an idle connection within 6 s"


def _served_database(tmp_path: Path) -> dict[str, str]:
    """The environment of a `nightshift serve` on a database of its own, its schema current."""
    env = {
        **os.environ,
        "NIGHTSHIFT_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "NIGHTSHIFT_HOME": str(tmp_path / "home"),
    }
    assert nightshift("db", "upgrade", env=env).returncode == 0
    return env


def _listeners(port: int) -> list[str]:
    """The listening sockets on the port, each with the processes holding it (ss)."""
    listed = subprocess.run(["ss", "-Hltnp", "sport", "=", f":{port}"], capture_output=True, text=True, check=True)
    return [line for line in listed.stdout.splitlines() if line.strip()]


def _worker_of(conn: socket.socket, port: int) -> str:
    """The pid of the server process holding the other end of this client connection (ss)."""
    local = conn.getsockname()[1]
    listed = subprocess.run(
        ["ss", "-Htnp", "state", "established", "sport", "=", f":{port}", "dport", "=", f":{local}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return listed.split("pid=", 1)[1].split(",", 1)[0]


def test_the_service_s_workers_each_listen_on_a_socket_of_their_own(tmp_path: Path) -> None:
    if not balanced_workers.balanced() or shutil.which("ss") is None:
        pytest.skip("SO_REUSEPORT spreads connections on Linux only; ss names the sockets' processes")
    env = _served_database(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Generous: under the suite's load two workers' imports can take most of a minute.
        deadline = time.monotonic() + 180
        # Both workers up: each listed as holding a listening socket (theirs, or a shared one).
        while sum(line.count("pid=") for line in _listeners(port)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        # uvicorn alone: one socket, every worker listed on it; here one socket per worker.
        listening = _listeners(port)
        assert len(listening) == 2 and all(line.count("pid=") == 1 for line in listening), listening
        connections = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(40)]
        try:
            for conn in connections:
                conn.sendall(REQUEST)
                assert _response(conn).startswith(b"HTTP/1.1 200")
            held = Counter(_worker_of(conn, port) for conn in connections)
        finally:
            for conn in connections:
                conn.close()
        # Spread by the kernel over the connections' addresses: one worker with 34 of 40 or more
        # has odds under one in a hundred thousand.
        assert len(held) == 2 and min(held.values()) >= 6, held
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_serving_on_a_port_another_server_holds_is_one_clear_line(tmp_path: Path) -> None:
    if not balanced_workers.balanced():
        pytest.skip("the workers' own sockets are Linux's")
    env = _served_database(tmp_path)
    # Another server, as an old `nightshift serve` still running would hold it: not to be shared.
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        refused = nightshift("serve", "--port", str(port), "--workers", "2", env=env)
    assert refused.returncode != 0
    assert refused.stderr.strip() == f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
