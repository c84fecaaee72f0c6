"""Deliver passed batches: readiness gate, file and outbox, signed webhooks, retries from the outbox."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run
from pydantic import BaseModel, Field

from flows.hooks import FAILURE_HOOKS
from nightshift.notify import messages as notify
from nightshift.notify import wording
from tasks.deliver import SendReport, prepare_delivery, send_due_messages, settle_deliveries
from tasks.notify import notify_ops, send_ops_messages


class DeliverParams(BaseModel):
    batch_id: int | None = Field(default=None, description="One batch, or empty for every due message.")


class DeliverResult(BaseModel):
    prepared_delivery_id: int | None
    sent: SendReport
    settled: list[dict[str, object]]


@flow(name="deliver", log_prints=True, **FAILURE_HOOKS)
def deliver_flow(params: DeliverParams = DeliverParams()) -> DeliverResult:
    delivery_id = None
    if params.batch_id is not None:
        delivery_id, outcome = prepare_delivery(params.batch_id)
        if outcome is not None and not outcome.success:
            notify_ops(wording.delivery_gate_failed(outcome, params.batch_id))
    sent = send_due_messages(params.batch_id)
    for client in sent.disabled_clients:
        notify_ops(notify.endpoint_disabled(client))
    settled = settle_deliveries(params.batch_id)
    for done in settled:
        message, channel = wording.delivery_settled(done)
        notify_ops(message, channel)
    if flow_run.get_parent_flow_run_id() is None:
        # The 15-minute schedule also retries ops messages Slack did not take earlier.
        send_ops_messages()
    if settled:
        create_table_artifact(key="deliveries", table=settled, description="Deliveries settled by this run")
    return DeliverResult(prepared_delivery_id=delivery_id, sent=sent, settled=settled)
