"""The local model server: an OpenAI-compatible Chat Completions API on 127.0.0.1 for the demo,
the tests and the benches. Deterministic (nightshift.simulation.model_answers), no weights.

The model name picks a behaviour, so one server plays every endpoint a test needs:
- any name: answers at once;
- containing `flaky`: each prompt's first request fails (429 with Retry-After, 500, a timeout,
  or a 200 whose body is not JSON, by turns), the next succeeds;
- containing `broken-429`, `broken-500`, `broken-timeout` or `broken-garbage`: always that.

`nightshift model-server` runs it; point a project's endpoint at http://127.0.0.1:<port>/v1.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from app.local_server import UvicornThread
from nightshift.simulation.model_answers import model_answer

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

MAX_BODY = 1_000_000
FLAKY_FAULTS = ("429", "500", "timeout", "garbage")
# Prompts whose first request failed, kept to let the next one through; bounded like any cache.
_REMEMBERED = 100_000


class ModelServer:
    """The ASGI app. hang_seconds: how long a `timeout` fault keeps the request before answering;
    delay_seconds: how long every answer takes (a model's latency), 0 by default."""

    def __init__(self, hang_seconds: float = 30.0, delay_seconds: float = 0.0) -> None:
        self.hang_seconds = hang_seconds
        self.delay_seconds = delay_seconds
        self.requests = 0
        # The last request's messages (roles and contents): what a chat's next turn carried.
        self.last_messages: list[tuple[str, str]] = []
        self.in_flight = self.most_in_flight = 0
        self.authorizations: set[str] = set()
        self._seen: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if method == "GET" and path in ("/v1/models", "/healthz"):
            await _json(send, 200, {"object": "list", "data": [{"id": "nightshift-sim", "object": "model"}]})
            return
        if method != "POST" or path != "/v1/chat/completions":
            await _error(send, 404, "not_found", "no such route")
            return
        body = await _body(receive)
        if body is None:
            await _error(send, 413, "invalid_request_error", f"request body over {MAX_BODY} bytes")
            return
        try:
            request = orjson.loads(body)
            model = str(request["model"])[:200]
            messages = request["messages"]
            prompt = "\n".join(str(m.get("content", "")) for m in messages)
            seed = request.get("seed")
            seed = seed if isinstance(seed, int) else None
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            await _error(send, 400, "invalid_request_error", "expected JSON with model and messages")
            return
        self.requests += 1
        self.last_messages = [(str(m.get("role", "")), str(m.get("content", ""))) for m in messages]
        self.authorizations.add(dict(scope["headers"]).get(b"authorization", b"").decode("latin-1"))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self._answer(send, model, prompt, seed)
        finally:
            self.in_flight -= 1

    async def _answer(self, send: Send, model: str, prompt: str, seed: int | None) -> None:
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        fault = self._fault(model, prompt)
        if fault == "429":
            await _error(send, 429, "rate_limit_exceeded", "slow down", {"retry-after-ms": "20"})
        elif fault == "500":
            await _error(send, 500, "server_error", "the model fell over")
        elif fault == "timeout":
            await asyncio.sleep(self.hang_seconds)
            await _error(send, 504, "timeout", "too late")
        elif fault == "garbage":
            await _send(send, 200, b"<html>502 Bad Gateway</html>", {"content-type": "application/json"})
        else:
            await _json(send, 200, _completion(model, prompt, seed))

    def _fault(self, model: str, prompt: str) -> str | None:
        for fault in FLAKY_FAULTS:
            if f"broken-{fault}" in model:
                return fault
        if "flaky" not in model:
            return None
        key = hashlib.sha256(f"{model}\x00{prompt}".encode()).hexdigest()
        with self._lock:
            tries = self._seen.get(key, 0)
            self._seen[key] = tries + 1
            if len(self._seen) > _REMEMBERED:
                self._seen.popitem(last=False)
        return FLAKY_FAULTS[int(key, 16) % len(FLAKY_FAULTS)] if tries == 0 else None


def _completion(model: str, prompt: str, seed: int | None) -> dict[str, Any]:
    answer = model_answer(model, prompt, seed)
    return {
        "id": "chatcmpl-" + hashlib.sha256(answer.text.encode()).hexdigest()[:24],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": len(prompt.split()),
            "completion_tokens": len(answer.text.split()),
            "total_tokens": len(prompt.split()) + len(answer.text.split()),
        },
    }


async def _body(receive: Receive) -> bytes | None:
    parts, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        parts.append(chunk)
        if not message.get("more_body"):
            return b"".join(parts)


async def _json(send: Send, status: int, value: Any) -> None:
    await _send(send, status, orjson.dumps(value), {"content-type": "application/json"})


async def _error(send: Send, status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> None:
    body = {"error": {"message": message, "type": kind, "code": kind}}
    await _send(send, status, orjson.dumps(body), {"content-type": "application/json", **(headers or {})})


async def _send(send: Send, status: int, body: bytes, headers: dict[str, str]) -> None:
    raw = [(k.encode(), v.encode()) for k, v in headers.items()] + [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class ModelServerThread(UvicornThread):
    """The model server on 127.0.0.1 in a background thread (the demo, tests)."""

    def __init__(self, port: int = 0, hang_seconds: float = 30.0, delay_seconds: float = 0.0) -> None:
        self.app = ModelServer(hang_seconds, delay_seconds)
        # A hanging request (a timeout fault) does not hold the server's stop for long.
        super().__init__(self.app, port, timeout_graceful_shutdown=1)

    @property
    def url(self) -> str:
        """The base URL a client is given: up to /v1."""
        return f"{self.origin}/v1"


def serve(host: str = "127.0.0.1", port: int = 8088, hang_seconds: float = 30.0, delay_seconds: float = 0.0) -> None:
    import uvicorn

    uvicorn.run(ModelServer(hang_seconds, delay_seconds), host=host, port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    import sys

    serve(port=int(sys.argv[1]) if len(sys.argv) > 1 else 8088)
