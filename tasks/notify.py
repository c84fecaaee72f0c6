from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from nightshift.notify import Message
from tasks.runtime import resources


@task(tags=["slack"], cache_policy=NO_CACHE)
def notify_ops(message: Message, channel: str | None = None) -> bool:
    """Post to a client channel or the ops channel; Slack trouble is logged, never raised."""
    res = resources()
    return res.notifier.send(channel or res.settings.slack_ops_channel, message)
