"""Bounds on every request body, before any route or parser sees it.

A body is read up to the limit (413 past it; a declared Content-Length past it is refused before
reading). A JSON body is checked for what makes parsers fail rather than refuse: nesting deeper
than the bounds allow, and numbers of thousands of digits (Python's int() refuses past 4,300
digits with an error FastAPI does not catch). The batch upload route streams its own body with
its own, larger limit (app/uploads.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from nightshift.platform.bounds import MAX_DEPTH

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Digits in one JSON number: far past any answer's need, far below what breaks a parser.
MAX_NUMBER_DIGITS = 400
_LONG_NUMBER = re.compile(rb"[0-9]{%d,}" % MAX_NUMBER_DIGITS)
# Strings, numbers and brackets of a JSON text, for the exact check run only when the quick one
# cannot rule a problem out.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]|-?[0-9][0-9.eE+-]*')


def json_body_problem(body: bytes, max_depth: int = MAX_DEPTH + 4) -> str | None:
    """Why a JSON body would break its parser, or None. max_depth leaves room for the envelope
    around an answer ({"answer": …}); the answer's own depth is held to MAX_DEPTH by the core."""
    openers = body.count(b"[") + body.count(b"{")
    if openers <= max_depth and not _LONG_NUMBER.search(body):
        return None  # the common case, decided at C speed
    depth = 0
    for token in _TOKENS.finditer(body):
        text = token.group()
        first = text[:1]
        if first in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                return f"nested deeper than {max_depth} levels"
        elif first in (b"]", b"}"):
            depth -= 1
        elif first != b'"' and len(text) > MAX_NUMBER_DIGITS:
            return f"a number longer than {MAX_NUMBER_DIGITS} digits"
    return None


class BodyLimits:
    """ASGI middleware: bounds request bodies; paths for which `exempt` is true stream their own."""

    def __init__(self, app: ASGIApp, max_bytes: int, exempt: Callable[[str], bool]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS") or self.exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _answer(send, 413, f"the request body is larger than {self.max_bytes} bytes")
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _answer(send, 413, f"the request body is larger than {self.max_bytes} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if b"json" in headers.get(b"content-type", b""):
            problem = json_body_problem(body)
            if problem is not None:
                await _answer(send, 422, f"the JSON body is {problem}")
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _answer(send: Send, status: int, detail: str) -> None:
    payload = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": payload})
