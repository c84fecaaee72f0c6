"""How long a failed webhook waits before its next attempt: a schedule, bounded so that no
setting or client spec can make a sender hammer an endpoint or keep a page for weeks."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

DEFAULT_RETRY_SCHEDULE = (5, 300, 1_800, 7_200, 18_000, 36_000, 36_000)
MIN_WAIT_SECONDS = 1
MAX_WAIT_SECONDS = 86_400
MAX_RETRIES = 20
# Three days of retries at most, as Stripe keeps trying.
MAX_TOTAL_SECONDS = 3 * 86_400


def _bounded_total(schedule: list[int]) -> list[int]:
    if sum(schedule) > MAX_TOTAL_SECONDS:
        raise ValueError(f"the waits add up to more than {MAX_TOTAL_SECONDS} seconds (three days)")
    return schedule


RetrySchedule = Annotated[
    list[Annotated[int, Field(ge=MIN_WAIT_SECONDS, le=MAX_WAIT_SECONDS)]],
    Field(
        min_length=1,
        max_length=MAX_RETRIES,
        description="Seconds to wait after each failed attempt (attempt n waits the n-th value, with up to "
        "20% jitter); its length is the number of retries. Each wait 1 s to 1 day, at most 20 retries "
        "and three days in all.",
    ),
    AfterValidator(_bounded_total),
]
