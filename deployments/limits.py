"""The concurrency limits Nightshift's tasks hold to, set on the Prefect API by one idempotent
command: `nightshift limits apply` (the serve script and the local stack apply them too).

Each is a Prefect tag concurrency limit, which Prefect 3 keeps as a global concurrency limit named
`tag:<tag>` (the UI's Concurrency page lists them): the task engine takes a slot before a tagged
task starts and frees it when the task ends. The limits live in Prefect, so every worker on every
machine shares the same slots, and ops can change a size in the UI without a deploy; running the
command again puts back the sizes below.

Why tags and not `concurrency("name")` inside the tasks: a task taking a slot itself hung in a
long-lived process (the CLI test session) once several flows had run in it; Prefect's own tag
slots, taken by the engine the same way for every task, did not.
"""

from __future__ import annotations

from tasks.dispatch import DB_WRITE_TAG, PLANNER_TAG
from tasks.runtime import CLIENT_WEBHOOKS, DATABASE, SLACK

DEFAULT_LIMITS: dict[str, int] = {
    # Tasks in a database transaction at once, across all workers: keeps connections well under
    # PostgreSQL's max_connections (each task's pool opens a few).
    DATABASE: 8,
    # Tasks sending client webhooks at once; each sends to several endpoints in parallel
    # (NIGHTSHIFT_WEBHOOK_ENDPOINTS_IN_PARALLEL), so this bounds outbound connections.
    CLIENT_WEBHOOKS: 4,
    # One Slack sender at a time: the workspace's rate limit is shared, not multiplied.
    SLACK: 1,
    # One dispatch planner at a time, so two batches never hand out the same expert's capacity.
    PLANNER_TAG: 1,
    # Bulk assignment writes across all flows. A dispatch flow runs two at a time (its task runner);
    # a limit at that width would make each next write wait on Prefect's retry for the slot just freed.
    DB_WRITE_TAG: 4,
}


def apply_limits(limits: dict[str, int] | None = None) -> dict[str, int]:
    """Create each limit or set it back to its size (the API upserts by tag); returns them."""
    from prefect import get_client

    wanted = dict(DEFAULT_LIMITS if limits is None else limits)
    with get_client(sync_client=True) as client:
        for tag, slots in wanted.items():
            client.create_concurrency_limit(tag=tag, concurrency_limit=slots)
    return wanted


def read_limits() -> dict[str, int]:
    """What the Prefect API holds for the limits Nightshift declares."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return {tag: client.read_concurrency_limit_by_tag(tag).concurrency_limit for tag in DEFAULT_LIMITS}
