"""Ops notifications: what to say (Block Kit with a text fallback) and who says it (Slack or the log)."""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("nightshift.notify.messages")

# Defence in depth: nothing that looks like a secret leaves in a message.
_SECRET_PATTERNS = re.compile(r"(whsec_[A-Za-z0-9+/=]+|xox[abpr]-[A-Za-z0-9-]+|nsk_[A-Za-z0-9_-]+)")


@dataclass(frozen=True)
class Message:
    """One thing ops should hear: a kind (bursts of one kind are grouped), a title and lines."""

    kind: str
    title: str
    lines: tuple[str, ...]
    # The event's identity: the same event reported again (a re-run) is said once.
    key: str | None = None
    # (label, url): a button, e.g. to the run in the Prefect UI.
    link: tuple[str, str] | None = None

    @property
    def text(self) -> str:
        """The plain-text fallback: notifications, screen readers, clients without blocks."""
        body = redact("\n".join(line.replace("*", "") for line in self.lines))[:2900]
        link = f"\n{self.link[0]}: {self.link[1]}" if self.link else ""
        return f"{redact(self.title)[:150]}\n{body}{link}"

    @property
    def blocks(self) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": redact(self.title)[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": redact("\n".join(self.lines))[:2900]}},
        ]
        if self.link:
            label, url = self.link
            blocks.append(
                {
                    "type": "actions",
                    "elements": [{"type": "button", "text": {"type": "plain_text", "text": label}, "url": url}],
                }
            )
        return blocks


def redact(text: str) -> str:
    return _SECRET_PATTERNS.sub("[redacted]", text)


def batch_delivered(client: str, project: str, batch_id: int, records: int, file_path: str) -> Message:
    return Message(
        "delivered",
        f"Delivered batch {batch_id} to {client}",
        (f"*Project:* {project}", f"*Records:* {records:,}", f"*File:* `{file_path}`"),
        key=f"delivered:{batch_id}:{file_path}",
    )


def delivery_dead(client: str, batch_id: int, error: str) -> Message:
    return Message(
        "delivery_dead",
        f"Delivery dead-lettered: batch {batch_id} for {client}",
        (f"*Last error:* {error}", "No more retries: fix the endpoint, then ask for a redelivery."),
    )


def endpoint_disabled(client: str) -> Message:
    return Message(
        "endpoint_disabled",
        f"Webhook endpoint of {client} disabled",
        (
            "*Why:* it answered 410 Gone. Its pages wait in the outbox; nothing is lost.",
            f"When the client has fixed it: `nightshift clients enable-webhook {client}`.",
        ),
    )


def gate_failed(gate: str, batch_id: int, failed: int, evaluated: int, threshold: str, next_step: str) -> Message:
    share = failed / evaluated if evaluated else 0.0
    return Message(
        "gate_failed",
        f"Gate {gate} failed for batch {batch_id}",
        (
            f"*Failing:* {failed:,} of {evaluated:,} ({share:.0%})",
            f"*Threshold:* {threshold}",
            f"*Next:* {next_step}",
        ),
    )


def unassignable(batch_id: int, count: int, sample_reason: str) -> Message:
    return Message(
        "unassignable",
        f"{count:,} items of batch {batch_id} cannot be assigned",
        (f"*Why (first):* {sample_reason}", "They stay listed until the pool can take them."),
    )


def budget_reached(scope: str, key: str, percent: int, standing: str, limits: str, held: int) -> Message:
    """A budget has reached an alert threshold; once per budget, threshold and limit (a raise
    arms the alerts again)."""
    hard = percent >= 100
    next_step = (
        "*Next:* dispatch staffs only what still fits (estimates at the expected time per item); "
        "to staff the waiting items, raise the budget: "
        "`nightshift budget raise`, or the raise-budget deployment in the Prefect UI."
        if hard
        else "*Next:* nothing yet; at 100% dispatch stops until the budget is raised."
    )
    lines = [f"*Spent and committed:* {standing}", next_step]
    if held:
        lines.insert(1, f"*Items waiting for budget:* {held:,}")
    return Message(
        "budget",
        f"The budget of {scope} is {'used up' if hard else f'at {percent}%'}",
        tuple(lines),
        key=f"budget:{key}:{percent}:{limits}",
    )


def flow_failed(flow: str, run_name: str, error: str, run_url: str) -> Message:
    return Message(
        "flow_failed",
        f"Flow {flow} failed",
        (f"*Run:* <{run_url}|{run_name}>", f"*Error:* {error[:500]}"),
        link=("Open the run in Prefect", run_url),
    )


def batch_at_risk(
    client: str, batch_id: int, deadline: dt.datetime, projected: dt.datetime, open_items: int
) -> Message:
    late = projected - deadline
    return Message(
        "at_risk",
        f"Batch {batch_id} for {client} may miss its deadline",
        (
            f"*Deadline:* {deadline:%Y-%m-%d %H:%M} UTC",
            f"*Projected finish:* {projected:%Y-%m-%d %H:%M} UTC ({late.total_seconds() / 3600:.1f} h late)",
            f"*Open items:* {open_items:,}",
            "*Next:* widen the pool (skills, languages) or raise capacity, or agree a new date with the client.",
        ),
        # Once per batch and projected day: a later projection is news, the same one is not.
        key=f"at_risk:{batch_id}:{projected:%Y-%m-%d}",
    )


def client_digest(client: str, day: dt.date, rows: list[dict[str, Any]]) -> Message:
    """The nightly digest of one client's batches: what came in, what is done, what it cost."""
    lines = []
    for r in rows:
        agreement = f"{r['agreement']:.2f}" if r["agreement"] is not None else "-"
        budget = f" of ${r['budget']}" if r["budget"] else ""
        lines.append(
            f"*Batch {r['batch_id']}* ({r['project']}, {r['status']}): {r['items']:,} in, {r['done']:,} done, "
            f"{r['in_review']:,} in review, {r['delivered']:,} delivered; agreement {agreement}; "
            f"cost ${r['cost']}{budget}"
        )
    return Message(
        "digest",
        f"Nightly digest for {client}: {day:%Y-%m-%d}",
        tuple(lines) or ("No open batches.",),
        key=f"digest:{client}:{day:%Y-%m-%d}",
    )


KIND_NAMES = {
    "delivered": "deliveries",
    "delivery_dead": "dead-lettered deliveries",
    "gate_failed": "gate failures",
    "unassignable": "unassignable reports",
    "flow_failed": "failed flow runs",
    "at_risk": "batches at risk",
    "digest": "digests",
}


def grouped(messages: list[Message], shown: int = 15) -> Message:
    """Several messages of one kind as one: each a line, so a burst is one notification."""
    kind = messages[0].kind
    lines = [f"• {m.title}: {m.lines[0].replace('*', '')}" for m in messages[:shown]]
    if len(messages) > shown:
        lines.append(f"… and {len(messages) - shown} more")
    return Message(kind, f"{len(messages)} {KIND_NAMES.get(kind, kind)}", tuple(lines))


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
        return True


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


def gold_flagged(project: str, item_id: int, upheld: int) -> Message:
    """A gold item whose answer adjudicators have overturned on appeal several times: its answer
    key is likely wrong, and every expert judged by it was judged wrongly."""
    return Message(
        "gold_flagged",
        f"Gold item {item_id} of {project} overturned on appeal {upheld} times",
        (
            "*Why:* adjudicators upheld experts' appeals against its gold answer.",
            "*Next:* check the item's answer key; `nightshift appeals flagged` lists every such item.",
        ),
        key=f"gold_flagged:{item_id}:{upheld}",
    )
