"""When a failed webhook page is tried again: the schedule, its jitter, and Retry-After."""

from __future__ import annotations

import random
from collections.abc import Sequence

from nightshift.platform.retry_schedule import DEFAULT_RETRY_SCHEDULE

# Seconds to wait after attempt n (1-based), roughly exponential (Svix's schedule: 5 s … 10 h, about
# a day and a half in all); each wait gets up to 20% jitter so a recovered endpoint is not stampeded.
# The default of the setting webhook_retry_schedule; a client's spec may give its endpoint its own.
RETRY_SCHEDULE = DEFAULT_RETRY_SCHEDULE
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
JITTER = 0.2
# Retry-After is honoured on these only, and never beyond a day.
SLOW_DOWN = (429, 503)


def next_attempt_delay(
    attempt_count: int,
    status_code: int | None,
    retry_after: float | None,
    schedule: Sequence[int] = RETRY_SCHEDULE,
) -> float:
    delay = schedule[min(attempt_count, len(schedule)) - 1] * random.uniform(1.0, 1.0 + JITTER)
    if status_code in SLOW_DOWN and retry_after is not None:
        delay = max(delay, retry_after)
    return delay
