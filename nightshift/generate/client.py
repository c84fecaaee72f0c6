"""Asking a model: the ChatModel port and its client for any OpenAI-compatible Chat Completions API.

The real client is the `openai` SDK: it retries timeouts, 429 and 5xx with backoff and honours
Retry-After. The local stand-in is not a fake client but a real server (`nightshift model-server`),
so the same client is exercised in the demo, the tests and production.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

import openai

from nightshift.generate.endpoints import request_parameters
from nightshift.projects.spec import ModelEndpoint

# Longer answers are refused, not stored: every stored field is bounded.
MAX_CONTENT_CHARS = 100_000


@dataclass(frozen=True)
class Answer:
    """A model's answer, or why there is none (error: the failure's kind, never a body or a URL)."""

    content: str | None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: int = 0
    attempts: int = 1
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


# Requests sent for the answer being asked for: each answer() runs in its own asyncio task, whose
# context holds its counter, and the HTTP client counts every request it sends, the SDK's own
# retries included (the SDK does not say how many it made of a request that failed).
_SENT: ContextVar[list[int]] = ContextVar("nightshift_requests_sent")


async def _count_sent(_request: Any) -> None:
    counter = _SENT.get(None)
    if counter is not None:
        counter[0] += 1


class ChatModel(Protocol):
    async def answer(self, messages: list[dict[str, str]]) -> Answer: ...

    async def close(self) -> None: ...


class OpenAIChatModel:
    """One endpoint's model: a pooled async client, its own retries, the request's parameters."""

    @classmethod
    def for_endpoint(cls, endpoint: ModelEndpoint, api_key: str | None, max_connections: int) -> OpenAIChatModel:
        return cls(
            endpoint.base_url,
            endpoint.model,
            api_key,
            request_parameters(endpoint),
            endpoint.timeout_seconds,
            endpoint.max_retries,
            max_connections=max_connections,
        )

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None,
        parameters: dict[str, Any],
        timeout_seconds: float,
        max_retries: int,
        max_connections: int = 64,
    ) -> None:
        import httpx

        self._model = model
        self._parameters = parameters
        self._max_retries = max_retries
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            # A local server needs none; the SDK insists on a value, which then goes nowhere secret.
            api_key=api_key or "not-needed",
            timeout=timeout_seconds,
            max_retries=max_retries,
            # aiohttp underneath: httpx's pool checks every idle connection on each request, which
            # made the client, not the model, the limit (docs/performance.md, generation).
            http_client=openai.DefaultAioHttpClient(
                limits=limits,
                timeout=timeout_seconds,
                follow_redirects=False,
                event_hooks={"request": [_count_sent]},
            ),
        )
        self._create = self._client.chat.completions.create

    async def answer(self, messages: list[dict[str, str]]) -> Answer:
        # A malformed 200 (garbage instead of JSON, no choices) is not retried by the SDK; it is
        # asked again here, as often as the SDK would retry an error.
        started = time.perf_counter()
        sent = [0]
        _SENT.set(sent)
        error = "no answer"
        for _ in range(self._max_retries + 1):
            try:
                completion = await self._create(
                    model=self._model,
                    messages=messages,  # type: ignore[arg-type]
                    **self._parameters,
                )
                answer = _read(completion)
            except openai.APIStatusError as exc:
                return self._failed(f"HTTP {exc.status_code}", started, sent[0])
            except (openai.APITimeoutError, openai.APIConnectionError) as exc:
                return self._failed(type(exc).__name__, started, sent[0])
            except Exception as exc:
                # The body is the endpoint's: any way it is wrong (not JSON, no choices) is data.
                error = f"malformed response: {type(exc).__name__}"
                continue
            if answer.content is not None and len(answer.content) > MAX_CONTENT_CHARS:
                return self._failed(f"answer over {MAX_CONTENT_CHARS:,} characters", started, sent[0])
            return Answer(
                content=answer.content,
                finish_reason=answer.finish_reason,
                prompt_tokens=answer.prompt_tokens,
                completion_tokens=answer.completion_tokens,
                latency_ms=_ms_since(started),
                attempts=sent[0],
            )
        return self._failed(error, started, sent[0])

    def _failed(self, error: str, started: float, attempts: int) -> Answer:
        return Answer(content=None, latency_ms=_ms_since(started), attempts=attempts, error=error[:200])

    async def close(self) -> None:
        await self._client.close()


def _read(completion: Any) -> Answer:
    choice = completion.choices[0]
    content = choice.message.content
    if not isinstance(content, str):
        raise TypeError("no text content")
    usage = completion.usage
    return Answer(
        content=content,
        finish_reason=str(choice.finish_reason) if choice.finish_reason is not None else None,
        prompt_tokens=_count(getattr(usage, "prompt_tokens", None)),
        completion_tokens=_count(getattr(usage, "completion_tokens", None)),
    )


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and 0 <= value < 2**31 else None


def _ms_since(started: float) -> int:
    return min(int((time.perf_counter() - started) * 1000), 2**31 - 1)
