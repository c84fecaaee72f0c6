"""The tag concurrency limits Nightshift's tasks hold to, set on the Prefect API by one command:
`nightshift limits apply` (the serve script applies them too).

Tasks carry the tags (tasks/); the limits live in Prefect, so every worker on every machine
obeys the same numbers, and ops can change them in the UI without a deploy.
"""

from __future__ import annotations

from tasks.dispatch import DB_WRITE_TAG, PLANNER_TAG

TAG_LIMITS: dict[str, int] = {
    # Every task that opens a database transaction: keeps connections well under the server's limit.
    "database": 8,
    # One dispatch planner at a time, so two batches never hand out the same expert's capacity.
    PLANNER_TAG: 1,
    # Bulk assignment writes across all flows. A dispatch flow runs two at a time (its task runner);
    # a limit at that width would make each next write wait on Prefect's retry for the slot just freed.
    DB_WRITE_TAG: 4,
}


def apply_limits(limits: dict[str, int] | None = None) -> dict[str, int]:
    """Create or update each limit (the API upserts by tag); returns what was applied."""
    from prefect import get_client

    wanted = dict(TAG_LIMITS if limits is None else limits)
    with get_client(sync_client=True) as client:
        for tag, slots in wanted.items():
            client.create_concurrency_limit(tag=tag, concurrency_limit=slots)
    return wanted


def read_limits(tags: list[str]) -> dict[str, int]:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return {tag: client.read_concurrency_limit_by_tag(tag).concurrency_limit for tag in tags}
