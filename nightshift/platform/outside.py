"""Real implementations of the outside-world interfaces: HTTP for webhooks, secrets from the env."""

from __future__ import annotations

import datetime as dt
import email.utils
import os
from dataclasses import dataclass
from typing import Protocol

import httpx

from nightshift.platform.addresses import Target
from nightshift.platform.errors import NightshiftError

# Retry-After is never honoured beyond a day.
MAX_RETRY_AFTER = 86_400.0


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Retry-After in seconds, given as seconds or as an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER)


@dataclass(frozen=True)
class PostResult:
    status_code: int | None
    error: str | None = None
    retry_after_seconds: float | None = None


class WebhookPoster(Protocol):
    def post(self, target: Target, headers: dict[str, str], body: bytes) -> PostResult: ...


class HttpxPoster:
    """One pooled HTTP client; redirects are never followed (a redirect could point anywhere)."""

    def __init__(self, timeout_seconds: float) -> None:
        self._client = httpx.Client(timeout=timeout_seconds, follow_redirects=False)

    def post(self, target: Target, headers: dict[str, str], body: bytes) -> PostResult:
        extensions = {}
        if target.host_header:
            # Connect to the checked address; Host and TLS (SNI, certificate name) keep the name.
            headers = headers | {"host": target.host_header}
            extensions["sni_hostname"] = target.tls_name
        try:
            response = self._client.post(target.url, headers=headers, content=body, extensions=extensions)
        except httpx.TimeoutException:
            return PostResult(None, "timeout")
        except httpx.HTTPError as exc:
            # The class names the failure (ConnectError, RemoteProtocolError); the message may carry
            # the URL, and the URL may carry a client's token.
            return PostResult(None, type(exc).__name__)
        error = None if response.is_success else f"HTTP {response.status_code}"
        retry_after = parse_retry_after(response.headers.get("retry-after"), dt.datetime.now(dt.UTC))
        return PostResult(response.status_code, error, retry_after)

    def close(self) -> None:
        self._client.close()


class SecretResolver(Protocol):
    def resolve(self, ref: str) -> list[str]: ...

    def store(self, ref: str, values: list[str]) -> None: ...


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

    def store(self, ref: str, values: list[str]) -> None:
        name = ref.partition(":")[2]
        # A process cannot set its deployment's environment: say what to set, never the value.
        raise NightshiftError(
            f"secret {ref!r} lives in the environment: set {name} to the new secret, a space, then the old one, "
            "on every worker; or move it to a Prefect Secret block to rotate it from here"
        )
