from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from expectations.delivery_readiness import check_delivery_readiness
from nightshift import delivery
from nightshift.db import transaction
from nightshift.models import Batch, Client, Delivery, DeliveryMessage, Project, utcnow
from nightshift.review import GateOutcome, record_gate
from tasks.runtime import DB_TASK, resources


@task(cache_policy=NO_CACHE, **DB_TASK)
def prepare_delivery(batch_id: int) -> tuple[int | None, GateOutcome | None]:
    """Gate the records for readiness, then write the file and outbox; None when not ready."""
    res = resources()
    with res.sessions() as session:
        if session.get_one(Batch, batch_id).status != "passed":
            return None, None
        records, passed_ids = delivery.build_records(session, batch_id)
    outcome = check_delivery_readiness(records, passed_ids)
    with transaction(res.sessions) as session:
        gate_run = record_gate(session, batch_id, outcome)
        if not outcome.success:
            return None, outcome
        summary = [{"gate": outcome.gate, "run": gate_run, "success": True}]
        delivery_id = delivery.write_delivery(
            session,
            batch_id,
            records,
            res.settings.resolved_delivery_dir,
            res.settings.webhook_page_records,
            summary,
        )
    return delivery_id, outcome


@task(cache_policy=NO_CACHE, tags=["client-webhooks"])
def send_due_messages(batch_id: int | None) -> dict[str, int]:
    """One attempt at every due outbox message; retries are scheduled in the database, not here."""
    res = resources()
    outcomes: dict[str, int] = {}
    with res.sessions() as session:
        due = delivery.due_messages(session, utcnow(), batch_id)
    for message_id in due:
        with transaction(res.sessions) as session:
            client = _client_of(session, message_id)
            secrets = res.secrets.resolve(client.webhook_secret_ref) if client.webhook_secret_ref else []
            status = delivery.send_message(
                session, message_id, res.poster, secrets, utcnow(), res.settings.webhook_http_allowlist
            )
        outcomes[status] = outcomes.get(status, 0) + 1
    return outcomes


def _client_of(session: Any, message_id: int) -> Client:
    message = session.get_one(DeliveryMessage, message_id)
    return session.get_one(Client, session.get_one(Delivery, message.delivery_id).client_id)


@task(cache_policy=NO_CACHE, **DB_TASK)
def settle_deliveries(batch_id: int | None) -> list[dict[str, Any]]:
    with transaction(resources().sessions) as session:
        settled = delivery.settle_deliveries(session, batch_id)
        out = []
        for delivery_id, status in settled:
            record = session.get_one(Delivery, delivery_id)
            project = session.get_one(Project, session.get_one(Batch, record.batch_id).project_id)
            client = session.get_one(Client, record.client_id)
            out.append(
                {
                    "delivery_id": delivery_id,
                    "batch_id": record.batch_id,
                    "status": status,
                    "records": record.record_count,
                    "file": record.file_path,
                    "client": client.slug,
                    "project": project.slug,
                    "channel": client.slack_channel,
                }
            )
        return out
