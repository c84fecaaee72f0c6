"""Telling ops: messages go to the outbox first and are sent from it (see nightshift.notify.ops_outbox)."""

from __future__ import annotations

import datetime as dt

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from nightshift.notify import messages as notify
from nightshift.notify import ops_outbox
from nightshift.notify.messages import Message
from nightshift.platform.db import transaction
from nightshift.platform.models import utcnow
from nightshift.reports import status as report
from tasks.runtime import SLACK, resources


@task(tags=[SLACK], cache_policy=NO_CACHE)
def notify_ops(message: Message, channel: str | None = None) -> bool:
    """Store the message for a client channel or the ops channel; a top-level flow sends at once,
    a subflow leaves it for its parent's send, so a nightly run's burst goes out grouped."""
    return _store_all([(channel, message)]) == 1


def _store_all(messages: list[tuple[str | None, Message]]) -> int:
    res = resources()
    with transaction(res.sessions) as session:
        stored = sum(
            ops_outbox.enqueue(session, channel or res.settings.slack_ops_channel, m) for channel, m in messages
        )
    if flow_run.get_parent_flow_run_id() is None:
        send_ops_messages_now()
    return stored


@task(tags=[SLACK], cache_policy=NO_CACHE)
def warn_of_batches_at_risk(batch_ids: list[int] | None = None) -> int:
    """A message per batch whose projected finish is after its deadline, in its client's channel."""
    with resources().sessions() as session:
        late = report.batches_at_risk(session, batch_ids)
    return _store_all(
        [(r.channel, notify.batch_at_risk(r.client, r.batch_id, r.deadline, r.projected, r.open_items)) for r in late]
    )


@task(tags=[SLACK], cache_policy=NO_CACHE)
def post_client_digests(now: dt.datetime | None = None) -> int:
    """The nightly digest, one per client and day, in the client's channel (or the ops channel)."""
    now = now or utcnow()
    with resources().sessions() as session:
        digests = report.client_digests(session, now - dt.timedelta(days=1))
    return _store_all(
        [(channel, notify.client_digest(client, now.date(), rows)) for (client, channel), rows in digests.items()]
    )


def send_ops_messages_now() -> ops_outbox.FlushReport:
    """Send what is due. Slack trouble is logged and retried on a later send, never raised."""
    res = resources()
    with transaction(res.sessions) as session:
        return ops_outbox.flush(session, res.notifier, utcnow())


@task(tags=[SLACK], cache_policy=NO_CACHE)
def send_ops_messages() -> ops_outbox.FlushReport:
    return send_ops_messages_now()
