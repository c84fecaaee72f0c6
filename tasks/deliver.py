from __future__ import annotations

from functools import partial
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from expectations.delivery_readiness import check_delivery_readiness
from nightshift.delivery import acceptance, outbox, webhooks
from nightshift.platform.db import transaction
from nightshift.platform.models import Batch, Client, Delivery, Project, utcnow
from nightshift.review.gates import GateOutcome, record_gate
from tasks.runtime import CLIENT_WEBHOOKS, DB_TASK, resources


class SendReport(BaseModel):
    outcomes: dict[str, int] = {}
    disabled_clients: list[str] = []
    records_delivered: int = 0
    sign_seconds: float = 0.0
    post_seconds: float = 0.0
    bookkeeping_seconds: float = 0.0


@task(cache_policy=NO_CACHE, **DB_TASK)
def prepare_delivery(batch_id: int) -> tuple[int | None, GateOutcome | None]:
    """Build the files, gate them for readiness, then publish them with the outbox; None when not ready."""
    res = resources()
    readiness = partial(check_delivery_readiness, docs_dir=res.settings.resolved_data_docs_dir)
    return outbox.prepare_delivery(res.sessions, batch_id, res.delivery_options, readiness, record_gate)


@task(cache_policy=NO_CACHE, tags=[CLIENT_WEBHOOKS])
def send_due_messages(batch_id: int | None) -> SendReport:
    """Send every due page until none is left; retries are scheduled in the database, not here."""
    res = resources()
    stats = webhooks.SendStats()
    records = webhooks.send_due(
        res.sessions,
        res.poster,
        res.secrets.resolve,
        res.settings.webhook_http_allowlist,
        stats,
        batch_id,
        workers=res.settings.webhook_endpoints_in_parallel,
        lease_seconds=res.settings.webhook_lease_seconds,
        claim_pages=res.settings.webhook_claim_pages,
        retry_schedule=res.settings.webhook_retry_schedule,
    )
    with res.sessions() as session:
        disabled = [session.get_one(Client, client_id).slug for client_id in stats.disabled_clients]
    return SendReport(
        outcomes=stats.outcomes,
        disabled_clients=disabled,
        records_delivered=records,
        sign_seconds=round(stats.sign_seconds, 3),
        post_seconds=round(stats.post_seconds, 3),
        bookkeeping_seconds=round(stats.bookkeeping_seconds, 3),
    )


@task(cache_policy=NO_CACHE, **DB_TASK)
def settle_deliveries(batch_id: int | None) -> list[dict[str, Any]]:
    with transaction(resources().sessions) as session:
        settled = outbox.settle_deliveries(session, batch_id)
        out = []
        for delivery_id, status in settled:
            record = session.get_one(Delivery, delivery_id)
            project = session.get_one(Project, session.get_one(Batch, record.batch_id).project_id)
            client = session.get_one(Client, record.client_id)
            out.append(
                {
                    "delivery_id": delivery_id,
                    "batch_id": record.batch_id,
                    "version": record.version,
                    "status": status,
                    "records": record.record_count,
                    "file": record.file_path,
                    "client": client.slug,
                    "project": project.slug,
                    "channel": client.slack_channel,
                }
            )
        return out


@task(cache_policy=NO_CACHE, **DB_TASK)
def close_acceptance_windows() -> dict[int, int]:
    """Records left without a verdict when their version's window ended are accepted."""
    with transaction(resources().sessions) as session:
        return acceptance.close_windows(session, utcnow())
