"""A client's webhook endpoint on 127.0.0.1 that verifies every request with `standardwebhooks`.

Used by the demo and the tests as the stand-in for a client's system. It can be told to fail.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    webhook_id: str
    body: dict[str, Any]


@dataclass
class ReceiverLog:
    verified: list[Received] = field(default_factory=list)
    rejected: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def unique_records(self) -> dict[str, dict[str, Any]]:
        """Records by external_id after de-duplication by webhook-id, as a client would do."""
        seen: set[str] = set()
        records: dict[str, dict[str, Any]] = {}
        for message in self.verified:
            if message.webhook_id in seen:
                continue
            seen.add(message.webhook_id)
            for record in message.body.get("records", []):
                records[record["external_id"]] = record
        return records


# Given the request number (1-based), answer (status, headers) to inject a fault, or None to accept.
FaultPlan = Callable[[int], tuple[int, dict[str, str]] | None]


class WebhookReceiver:
    def __init__(self, secret: str, fault_plan: FaultPlan | None = None) -> None:
        self.log = ReceiverLog()
        self._verifier = Webhook(secret)
        self._fault_plan = fault_plan
        self._requests = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length).decode()
                with receiver.log.lock:
                    receiver._requests += 1
                    number = receiver._requests
                fault = receiver._fault_plan(number) if receiver._fault_plan else None
                if fault is not None:
                    self._answer(fault[0], fault[1])
                    return
                try:
                    payload = receiver._verifier.verify(body, {k.lower(): v for k, v in self.headers.items()})
                except WebhookVerificationError:
                    with receiver.log.lock:
                        receiver.log.rejected += 1
                    self._answer(401, {})
                    return
                with receiver.log.lock:
                    receiver.log.verified.append(Received(self.headers["webhook-id"], payload))
                self._answer(204, {})

            def _answer(self, status: int, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/webhooks/nightshift"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True)
