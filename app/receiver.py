"""A client's webhook endpoint on 127.0.0.1 that verifies every request with `standardwebhooks`.

Used by the demo and the tests as the stand-in for a client's system. It can be told to fail.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.local_server import LocalServer, QuietHandler


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


class WebhookReceiver(LocalServer):
    def __init__(self, secret: str, fault_plan: FaultPlan | None = None) -> None:
        self.log = ReceiverLog()
        self._verifier = Webhook(secret)
        self._fault_plan = fault_plan
        self._requests = 0
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
                with receiver.log.lock:
                    receiver._requests += 1
                    number = receiver._requests
                fault = receiver._fault_plan(number) if receiver._fault_plan else None
                if fault is not None:
                    self.reply(fault[0], headers=fault[1])
                    return
                try:
                    payload = receiver._verifier.verify(body, {k.lower(): v for k, v in self.headers.items()})
                except WebhookVerificationError:
                    with receiver.log.lock:
                        receiver.log.rejected += 1
                    self.reply(401)
                    return
                with receiver.log.lock:
                    receiver.log.verified.append(Received(self.headers["webhook-id"], payload))
                self.reply(204)

        super().__init__(Handler)

    @property
    def url(self) -> str:
        return f"{self.origin}/webhooks/nightshift"
