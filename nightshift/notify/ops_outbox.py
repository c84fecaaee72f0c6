"""The ops notification outbox: messages are stored first and sent after, so Slack being down or
answering errors never fails a flow and loses nothing; a burst of one kind to one channel goes
out as one grouped message."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from nightshift.notify.messages import Message, Notifier, grouped
from nightshift.platform.db import transaction
from nightshift.platform.models import OpsMessage, utcnow
from nightshift.platform.sql import insert_ignoring_conflicts

log = logging.getLogger(__name__)

# Retried on each later flush after these waits; dead (and logged) after the last.
BACKOFF = (dt.timedelta(minutes=1), dt.timedelta(minutes=5), dt.timedelta(minutes=15), dt.timedelta(hours=1))
MAX_ATTEMPTS = len(BACKOFF) + 1


def enqueue(session: Session, channel: str, message: Message, at: dt.datetime | None = None) -> bool:
    """Store a message for sending from `at` (now); False when the same event (its key) is stored."""
    row = {
        "next_attempt_at": at or utcnow(),
        "channel": channel,
        "kind": message.kind,
        "event_key": message.key,
        "title": message.title,
        "lines": list(message.lines),
        "link": list(message.link) if message.link else None,
    }
    return insert_ignoring_conflicts(session, OpsMessage, [row], ["event_key"]) > 0


@dataclass
class FlushReport:
    sent: int = 0
    grouped: int = 0
    failed: int = 0
    dead: int = 0


def flush(session: Session, notifier: Notifier, now: dt.datetime, group_from: int = 3, limit: int = 500) -> FlushReport:
    """Send what is due: per channel and kind, `group_from` or more pending messages become one.

    Rows are locked while they are sent (SKIP LOCKED on PostgreSQL), so two flows flushing at
    once never send a message twice.
    """
    due = list(
        session.scalars(
            select(OpsMessage)
            .where(OpsMessage.status == "pending", OpsMessage.next_attempt_at <= now)
            .order_by(OpsMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    groups: dict[tuple[str, str], list[OpsMessage]] = defaultdict(list)
    for row in due:
        groups[(row.channel, row.kind)].append(row)
    report = FlushReport()
    for (channel, _kind), rows in groups.items():
        messages = [_message(row) for row in rows]
        if len(rows) >= group_from:
            outcomes = [(rows, notifier.send(channel, grouped(messages)))]
            report.grouped += len(rows) if outcomes[0][1] else 0
        else:
            outcomes = [([row], notifier.send(channel, message)) for row, message in zip(rows, messages, strict=True)]
        for sent_rows, ok in outcomes:
            for row in sent_rows:
                _settle(row, ok, now, report)
    return report


def _message(row: OpsMessage) -> Message:
    link = (str(row.link[0]), str(row.link[1])) if row.link else None
    return Message(row.kind, row.title, tuple(str(line) for line in row.lines), row.event_key, link)


def _settle(row: OpsMessage, ok: bool, now: dt.datetime, report: FlushReport) -> None:
    row.attempts += 1
    if ok:
        row.status, row.sent_at = "sent", now
        report.sent += 1
        return
    row.last_error = "Slack did not take the message (see the log)"
    if row.attempts >= MAX_ATTEMPTS:
        row.status = "dead"
        report.dead += 1
        log.error("ops message %s to %s given up after %s attempts: %s", row.id, row.channel, row.attempts, row.title)
    else:
        row.next_attempt_at = now + BACKOFF[row.attempts - 1]
        report.failed += 1


def enqueue_now(sessions: sessionmaker[Session], channel: str, message: Message) -> bool:
    """enqueue() in a transaction of its own (a flow's failure hook has no other)."""
    with transaction(sessions) as session:
        return enqueue(session, channel, message)
