"""Commands for review: gate and aggregate a batch, or aggregate a finished one again."""

from __future__ import annotations

import typer

from app.cli.common import BatchOption, JsonFlag, emit, prefect_api, ready_sessions, require_batch
from app.cli.deliver import deliver


def review(batch: BatchOption, as_json: JsonFlag = False) -> None:
    """Gate and aggregate a batch's submissions."""
    api_ready = prefect_api()
    require_batch(batch)
    from flows.review import ReviewParams, review_flow

    with api_ready():
        result = review_flow(ReviewParams(batch_id=batch))
    emit(
        result,
        as_json,
        [
            f"batch {batch}: gated {result.gated} submissions, rejected {result.rejected}; "
            f"{result.passed_items} items passed, {result.rework_items} back for rework, "
            f"{result.more_overlap_items} need one more expert; batch is {result.batch_status}",
        ],
    )


def reaggregate(batch: BatchOption, as_json: JsonFlag = False) -> None:
    """Aggregate a finished batch again with today's reliabilities; changes go out as a new version."""
    api_ready = prefect_api()
    from nightshift.platform.db import transaction
    from nightshift.review.settle import reaggregate_batch

    require_batch(batch)
    with transaction(ready_sessions()) as session:
        changed = reaggregate_batch(session, batch, "cli")
    typer.echo(f"batch {batch}: {changed} final answers changed")
    if changed:
        with api_ready():
            deliver(batch, as_json)
