"""Model clients kept for the life of the process, for one request at a time from plain code (an
expert's run from the workbench): one event loop in a thread of its own and a client per
endpoint set-up on it. A client made and closed per run, with a loop of its own, cost far more
than the run itself (docs/performance.md, "Runs from the workbench")."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

from nightshift.generate.client import Answer, OpenAIChatModel
from nightshift.generate.endpoints import request_parameters
from nightshift.projects.spec import ModelEndpoint

# Requests at once per endpoint set-up from one process's experts.
CONNECTIONS = 8


class SharedModels:
    """answer(endpoint, api_key, messages) from any thread; close() ends the loop and its clients."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._clients: dict[tuple[Any, ...], OpenAIChatModel] = {}

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="nightshift-models", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def answer(self, endpoint: ModelEndpoint, api_key: str | None, messages: Sequence[dict[str, str]]) -> Answer:
        loop = self._running_loop()
        parameters = request_parameters(endpoint)
        key = (
            endpoint.base_url,
            endpoint.model,
            api_key,
            repr(sorted(parameters.items())),
            endpoint.timeout_seconds,
            endpoint.max_retries,
        )

        async def ask() -> Answer:
            client = self._clients.get(key)
            if client is None:
                # Made on the loop it will run on (aiohttp's session belongs to its loop).
                client = OpenAIChatModel.for_endpoint(endpoint, api_key, CONNECTIONS)
                self._clients[key] = client
            return await client.answer(list(messages))

        return asyncio.run_coroutine_threadsafe(ask(), loop).result()

    def close(self) -> None:
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None:
            return

        async def close_all() -> None:
            for client in self._clients.values():
                await client.close()
            self._clients.clear()

        asyncio.run_coroutine_threadsafe(close_all(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=10)
        loop.close()
