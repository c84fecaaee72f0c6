"""Real implementations of the outside-world interfaces: HTTP for webhooks, secrets from the env."""

from __future__ import annotations

import os
from typing import Protocol

import httpx

from nightshift.delivery import PostResult
from nightshift.errors import NightshiftError


class HttpxPoster:
    """One pooled HTTP client; redirects are never followed (a redirect could point anywhere)."""

    def __init__(self, timeout_seconds: float) -> None:
        self._client = httpx.Client(timeout=timeout_seconds, follow_redirects=False)

    def post(self, url: str, headers: dict[str, str], body: str) -> PostResult:
        try:
            response = self._client.post(url, headers=headers, content=body.encode())
        except httpx.TimeoutException:
            return PostResult(None, "timeout")
        except httpx.HTTPError as exc:
            return PostResult(None, f"{type(exc).__name__}")
        retry_after = response.headers.get("retry-after")
        seconds = float(retry_after) if retry_after and retry_after.isdigit() else None
        error = None if response.is_success else f"HTTP {response.status_code}"
        return PostResult(response.status_code, error, seconds)

    def close(self) -> None:
        self._client.close()


class SecretResolver(Protocol):
    def resolve(self, ref: str) -> list[str]: ...


class EnvSecretResolver:
    """env:NAME → the value of NAME; two secrets separated by a space mean a rotation is under way."""

    def resolve(self, ref: str) -> list[str]:
        kind, _, name = ref.partition(":")
        if kind != "env":
            raise NightshiftError(f"secret {ref!r} is not an environment variable reference")
        value = os.environ.get(name)
        if not value:
            raise NightshiftError(f"secret environment variable {name} is not set")
        return value.split()
