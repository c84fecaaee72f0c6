"""Commands for delivery: deliver batches, redeliver one, list a batch's delivery versions."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import BatchOption, JsonFlag, emit, prefect_api, ready_sessions, require_batch


def deliver(
    batch: Annotated[int | None, typer.Option("--batch", "-b", help="Batch id; omit for all due.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Deliver passed batches and send every due webhook page."""
    api_ready = prefect_api()
    if batch is not None:
        require_batch(batch)
    from flows.deliver import DeliverParams, deliver_flow

    with api_ready():
        result = deliver_flow(DeliverParams(batch_id=batch))
    sent = result.sent
    emit(
        result,
        as_json,
        [
            f"pages: {sent.outcomes or 'none due'}; {sent.records_delivered} records delivered",
            *(f"endpoint of {c} disabled (410 Gone): its pages wait" for c in sent.disabled_clients),
            *(
                f"batch {s['batch_id']} v{s['version']}: {s['status']}, {s['records']} records, file {s['file']}"
                for s in result.settled
            ),
        ],
    )


def redeliver(
    batch: BatchOption,
    reason: Annotated[str, typer.Option(help="Why, as the client will read it in the manifest.")],
    as_json: JsonFlag = False,
) -> None:
    """Send a delivered or dead-lettered batch again as a new version, saying what changed."""
    from nightshift.delivery.outbox import request_redelivery
    from nightshift.platform.db import transaction

    require_batch(batch)
    with transaction(ready_sessions()) as session:
        request_redelivery(session, batch, reason, "cli")
    deliver(batch, as_json)


def deliveries(batch: BatchOption, as_json: JsonFlag = False) -> None:
    """Every version of a batch's delivery: why, its pages and their attempts."""
    from nightshift.reports.status import delivery_history

    require_batch(batch)
    with ready_sessions()() as session:
        history = delivery_history(session, batch)
    emit(
        history,
        as_json,
        [
            f"v{d['version']} {d['status']}: {d['records']} records in {d['pages']} pages "
            f"({d['pages_delivered']} delivered, {d['attempts']} attempts) - {d['reason']}"
            for d in history
        ]
        or [f"batch {batch} has no delivery"],
    )
