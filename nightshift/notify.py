"""Ops notifications: what to say (Block Kit with a text fallback) and who says it (Slack or the log)."""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("nightshift.notify")

# Defence in depth: nothing that looks like a secret leaves in a message.
_SECRET_PATTERNS = re.compile(r"(whsec_[A-Za-z0-9+/=]+|xox[abpr]-[A-Za-z0-9-]+|nsk_[A-Za-z0-9_-]+)")


@dataclass(frozen=True)
class Message:
    text: str
    blocks: list[dict[str, Any]]


def redact(text: str) -> str:
    return _SECRET_PATTERNS.sub("[redacted]", text)


def _message(title: str, lines: list[str]) -> Message:
    body = redact("\n".join(lines))[:2900]
    title = redact(title)[:150]
    return Message(
        text=f"{title}\n{body}",
        blocks=[
            {"type": "header", "text": {"type": "plain_text", "text": title}},
            {"type": "section", "text": {"type": "mrkdwn", "text": body}},
        ],
    )


def batch_delivered(client: str, project: str, batch_id: int, records: int, file_path: str) -> Message:
    return _message(
        f"Delivered batch {batch_id} to {client}",
        [
            f"*Project:* {project}",
            f"*Records:* {records}",
            f"*File:* `{file_path}`",
        ],
    )


def delivery_dead(client: str, batch_id: int, error: str) -> Message:
    return _message(
        f"Delivery dead-lettered: batch {batch_id} for {client}",
        [
            f"*Last error:* {error}",
            "No more retries: fix the endpoint, then ask for a redelivery.",
        ],
    )


def gate_failed(gate: str, batch_id: int, failed: int, evaluated: int, threshold: str, next_step: str) -> Message:
    return _message(
        f"Gate {gate} failed for batch {batch_id}",
        [
            f"*Failing rows:* {failed} of {evaluated}",
            f"*Threshold:* {threshold}",
            f"*Next:* {next_step}",
        ],
    )


def unassignable(batch_id: int, count: int, sample_reason: str) -> Message:
    return _message(
        f"{count} items of batch {batch_id} cannot be assigned",
        [
            f"*Why (first):* {sample_reason}",
            "They stay listed until the pool can take them.",
        ],
    )


def flow_failed(flow: str, run_name: str, error: str, run_url: str) -> Message:
    return _message(
        f"Flow {flow} failed",
        [
            f"*Run:* <{run_url}|{run_name}>",
            f"*Error:* {error[:500]}",
        ],
    )


class Notifier(Protocol):
    def send(self, channel: str, message: Message) -> bool: ...


class LogNotifier:
    """Stands in when Slack is not configured: says so once, then logs each message."""

    _warned = False

    def send(self, channel: str, message: Message) -> bool:
        if not LogNotifier._warned:
            log.warning("Slack is not configured (NIGHTSHIFT_SLACK_TOKEN unset): notifications go to the log")
            LogNotifier._warned = True
        log.info("notify %s: %s", channel, message.text.splitlines()[0])
        return False


class SlackNotifier:
    """Posts with slack-sdk; never raises, so Slack trouble can't fail a flow."""

    def __init__(self, token: str, base_url: str, min_interval_seconds: float = 1.0) -> None:
        from slack_sdk import WebClient
        from slack_sdk.http_retry.builtin_handlers import (
            ConnectionErrorRetryHandler,
            RateLimitErrorRetryHandler,
        )

        self._client = WebClient(
            token=token,
            base_url=base_url.rstrip("/") + "/",
            timeout=10,
            retry_handlers=[
                ConnectionErrorRetryHandler(max_retry_count=2),
                RateLimitErrorRetryHandler(max_retry_count=3),
            ],
        )
        self._interval = min_interval_seconds
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def send(self, channel: str, message: Message) -> bool:
        from slack_sdk.errors import SlackApiError

        with self._lock:
            # Slack allows about one message per second per channel.
            wait = self._last.get(channel, 0.0) + self._interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last[channel] = time.monotonic()
        try:
            self._client.chat_postMessage(channel=channel, text=message.text, blocks=message.blocks)
            return True
        except SlackApiError as exc:
            log.warning("Slack refused a message to %s: %s", channel, exc.response.get("error"))
        except Exception as exc:  # network trouble of any kind: log, never fail the caller
            log.warning("Slack unreachable for %s: %s", channel, type(exc).__name__)
        return False
