"""A stand-in for the Slack Web API on 127.0.0.1, reached by the real slack-sdk through base_url."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class SlackStandIn:
    def __init__(self, rate_limit_first: int = 0, retry_after: int = 1) -> None:
        self.messages: list[dict[str, Any]] = []
        self.requests: list[tuple[float, str]] = []
        self.tokens: list[str] = []
        self._rate_limit_left = rate_limit_first
        self._retry_after = retry_after
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                server.requests.append((time.monotonic(), self.path))
                server.tokens.append(self.headers.get("authorization", ""))
                if server._rate_limit_left > 0:
                    server._rate_limit_left -= 1
                    self._reply(
                        429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(server._retry_after)}
                    )
                    return
                if not self.path.endswith("/chat.postMessage"):
                    self._reply(200, {"ok": False, "error": "unknown_method"})
                    return
                payload = json.loads(body or b"{}")
                if not payload.get("text"):
                    self._reply(200, {"ok": False, "error": "no_text"})
                    return
                server.messages.append(payload)
                self._reply(200, {"ok": True, "channel": payload.get("channel"), "ts": str(time.time())})

            def _reply(
                self, status: int, data: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/"

    def __enter__(self) -> SlackStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
