"""A client's webhook endpoint on 127.0.0.1 that verifies every request with `standardwebhooks`.

Used by the demo and the tests as the stand-in for a client's system. It can be told to fail.
"""

from __future__ import annotations

import socket
import threading
import time
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
    # Requests whose sender went away before the whole body arrived (a sender killed mid-POST).
    incomplete: int = 0
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


@dataclass(frozen=True)
class Fault:
    """What to do to one request instead of accepting it."""

    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    # Answer only after this long (beyond the sender's timeout, it is a timeout).
    delay_seconds: float = 0.0
    # Close the connection without answering.
    drop: bool = False
    # Accept it after the delay instead of failing it (a slow but healthy endpoint).
    accept: bool = False


# Given the request number (1-based), a Fault to inject, or None to accept.
FaultPlan = Callable[[int], Fault | None]


class WebhookReceiver(LocalServer):
    def __init__(self, secret: str | list[str], fault_plan: FaultPlan | None = None) -> None:
        self.log = ReceiverLog()
        # Several secrets: a receiver part-way through a rotation accepts either.
        self._verifiers = [Webhook(s) for s in ([secret] if isinstance(secret, str) else secret)]
        self._fault_plan = fault_plan
        self._requests = 0
        self.hosts: list[str] = []
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                raw = self.rfile.read(length)
                if len(raw) < length:
                    # A real server never hands a half-received request to its application: it is
                    # neither verified nor rejected, and the sender hears nothing.
                    with receiver.log.lock:
                        receiver.log.incomplete += 1
                    self.close_connection = True
                    return
                body = raw.decode()
                with receiver.log.lock:
                    receiver._requests += 1
                    number = receiver._requests
                    receiver.hosts.append(self.headers.get("host", ""))
                fault = receiver._fault_plan(number) if receiver._fault_plan else None
                if fault is not None:
                    time.sleep(fault.delay_seconds)
                    if fault.drop:
                        self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
                        return
                    if not fault.accept:
                        self.reply(fault.status, headers=fault.headers)
                        return
                payload = receiver.verify(body, {k.lower(): v for k, v in self.headers.items()})
                if payload is None:
                    with receiver.log.lock:
                        receiver.log.rejected += 1
                    self.reply(401)
                    return
                with receiver.log.lock:
                    receiver.log.verified.append(Received(self.headers["webhook-id"], payload))
                self.reply(204)

        super().__init__(Handler)

    @property
    def requests(self) -> int:
        return self._requests

    def verify(self, body: str, headers: dict[str, str]) -> dict[str, Any] | None:
        for verifier in self._verifiers:
            try:
                return dict(verifier.verify(body, headers))
            except WebhookVerificationError:
                continue
        return None

    @property
    def url(self) -> str:
        return f"{self.origin}/webhooks/nightshift"
