"""A stand-in for the Slack Web API on 127.0.0.1, reached by the real slack-sdk through base_url."""

from __future__ import annotations

import json
import time
from typing import Any

from app.local_server import LocalServer, QuietHandler


class SlackStandIn(LocalServer):
    def __init__(self, rate_limit_first: int = 0, retry_after: int = 1) -> None:
        self.messages: list[dict[str, Any]] = []
        self.requests: list[tuple[float, str]] = []
        self.tokens: list[str] = []
        self._rate_limit_left = rate_limit_first
        self._retry_after = retry_after
        server = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                server.requests.append((time.monotonic(), self.path))
                server.tokens.append(self.headers.get("authorization", ""))
                if server._rate_limit_left > 0:
                    server._rate_limit_left -= 1
                    wait = {"Retry-After": str(server._retry_after)}
                    self.answer(429, {"ok": False, "error": "ratelimited"}, wait)
                elif not self.path.endswith("/chat.postMessage"):
                    self.answer(200, {"ok": False, "error": "unknown_method"})
                elif not (payload := json.loads(body or b"{}")).get("text"):
                    self.answer(200, {"ok": False, "error": "no_text"})
                else:
                    server.messages.append(payload)
                    self.answer(200, {"ok": True, "channel": payload.get("channel"), "ts": str(time.time())})

            def answer(self, status: int, data: dict[str, Any], extra: dict[str, str] | None = None) -> None:
                headers = {"content-type": "application/json", **(extra or {})}
                self.reply(status, json.dumps(data).encode(), headers)

        super().__init__(Handler)

    @property
    def base_url(self) -> str:
        return f"{self.origin}/api/"
