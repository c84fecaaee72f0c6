"""Commands for staffing work: dispatch a batch's items to experts."""

from __future__ import annotations

from app.cli.common import BatchOption, JsonFlag, emit, prefect_api, require_batch


def dispatch(batch: BatchOption, as_json: JsonFlag = False) -> None:
    """Assign each item of a batch to qualified experts."""
    api_ready = prefect_api()
    require_batch(batch)
    from flows.dispatch import DispatchParams, dispatch_flow

    with api_ready():
        result = dispatch_flow(DispatchParams(batch_id=batch))
    emit(
        result,
        as_json,
        [
            f"batch {batch}: {result.assignments} assignments for {result.items} items; "
            f"{result.unassignable} unassignable; {result.expired} expired; "
            + (f"{result.awaiting_models} waiting for model answers; " if result.awaiting_models else "")
            + f"expected {result.expected_hours:,.1f} h, ${result.expected_cost_usd:,.2f}; "
            f"projected finish {result.projected_finish or '-'}",
        ],
    )
