"""The web service's connection handling, seen from a raw socket."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

from app.web import KEEP_ALIVE_SECONDS, ServiceThread, create_app
from nightshift import resources as root

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
