"""Asking one endpoint's model for a chunk of items: requests at once and per minute bounded,
answers stored as they come, so a chunk's memory is its requests, not its answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from nightshift.generate.client import Answer, ChatModel
from nightshift.generate.endpoints import Request

T = TypeVar("T")

# Answers are written in groups of FLUSH_EVERY, or sooner once the oldest unwritten one is
# FLUSH_AFTER_SECONDS old, so a slow model's answers are not held for minutes. Each write hands
# the GIL to the writer thread and back several times (one per round trip), which slows the event
# loop far more than the write's own CPU does: fewer, larger writes keep the client at full speed.
FLUSH_EVERY = 2_000
FLUSH_AFTER_SECONDS = 2.0
# Writes in flight at once; past it, answering waits for the database rather than piling up rows.
WRITES_IN_FLIGHT = 2


@dataclass
class ChunkReport:
    asked: int = 0
    answered: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def add(self, answer: Answer) -> None:
        self.asked += 1
        if answer.ok:
            self.answered += 1
        else:
            self.failed += 1
            kind = answer.error or "unknown"
            self.errors[kind] = self.errors.get(kind, 0) + 1


class Pacer:
    """Requests started per minute, evenly spaced and with no burst: a chunk starting after another
    cannot begin with a minute's worth of requests at once."""

    def __init__(self, per_minute: int | None) -> None:
        self._gap = 60.0 / per_minute if per_minute else 0.0
        self._next = time.monotonic()

    async def wait(self) -> None:
        if not self._gap:
            return
        now = time.monotonic()
        slot = max(self._next, now)
        self._next = slot + self._gap
        if slot > now:
            await asyncio.sleep(slot - now)


async def ask_all(
    model: ChatModel,
    requests: Sequence[Request],
    row_of: Callable[[Request, Answer], dict[str, Any]],
    write: Callable[[list[dict[str, Any]]], None],
    max_concurrent: int,
    per_minute: int | None = None,
    flush_every: int = FLUSH_EVERY,
    flush_after_seconds: float = FLUSH_AFTER_SECONDS,
) -> ChunkReport:
    """Ask the model for every request, at most max_concurrent in flight; write() receives the
    rows in groups and runs in a thread, so requests go on while the database writes."""
    report = ChunkReport()
    pacer = Pacer(per_minute)
    todo: asyncio.Queue[Request] = asyncio.Queue()
    for request in requests:
        todo.put_nowait(request)
    done: list[dict[str, Any]] = []
    writes: list[asyncio.Task[None]] = []
    oldest = [0.0]

    async def flush() -> None:
        if done:
            rows = done.copy()
            done.clear()
            writes.append(asyncio.create_task(asyncio.to_thread(write, rows)))
        while len(writes) > WRITES_IN_FLIGHT:
            await writes.pop(0)

    async def worker() -> None:
        while True:
            try:
                request = todo.get_nowait()
            except asyncio.QueueEmpty:
                return
            await pacer.wait()
            answer = await model.answer(request.messages)
            report.add(answer)
            if not done:
                oldest[0] = time.monotonic()
            done.append(row_of(request, answer))
            if len(done) >= flush_every or time.monotonic() - oldest[0] >= flush_after_seconds:
                await flush()

    await asyncio.gather(*(worker() for _ in range(max(1, min(max_concurrent, len(requests))))))
    await flush()
    # A failed write fails the chunk (its task retries it; stored answers are kept, the rest asked again).
    for written in writes:
        await written
    return report


def run_to_end(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from plain code. A caller already inside an event loop (a notebook, an async
    test, a browser driver) cannot start another in its thread, so the coroutine gets one in its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(1, thread_name_prefix="nightshift-generate") as pool:
        return pool.submit(asyncio.run, coroutine).result()
