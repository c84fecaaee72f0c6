"""Retention: purge the content of delivered batches whose client's retention period has passed.

Ids, content hashes, a hash of each answer, the deliveries' manifests and the audit trail stay;
items' fields, answers, model output, quarantined rows, webhook pages and delivered files go.
"""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_table_artifact
from pydantic import BaseModel, Field

from flows.hooks import FAILURE_HOOKS
from tasks.retention import batches_due, purge_batch, remove_leftover_folders


class PurgeParams(BaseModel):
    client: str | None = Field(default=None, max_length=64, description="Only this client's batches (slug).")
    dry_run: bool = Field(default=False, description="List what is due without purging it.")
    requested_by: str = Field(default="retention", min_length=1, max_length=100, description="Kept in the audit log.")


class PurgedBatch(BaseModel):
    batch_id: int
    client: str
    last_delivered_at: str
    retention_days: int
    rows: dict[str, int] = {}
    folders: int = 0


class PurgeResult(BaseModel):
    dry_run: bool
    batches: list[PurgedBatch]
    leftover_folders: int = 0


@flow(name="retention-purge", log_prints=True, **FAILURE_HOOKS)
def purge_flow(params: PurgeParams) -> PurgeResult:
    due = batches_due(params.client)
    done: list[PurgedBatch] = []
    for batch in due:
        entry = PurgedBatch(
            batch_id=batch.batch_id,
            client=batch.client,
            last_delivered_at=batch.last_delivered_at.isoformat(),
            retention_days=batch.retention_days,
        )
        if not params.dry_run:
            purged = purge_batch(batch.batch_id, params.requested_by)
            if purged is None:
                continue  # another run purged it first
            entry.rows, entry.folders = purged["rows"], purged["folders"]
        done.append(entry)
    leftovers = 0 if params.dry_run else remove_leftover_folders()
    verb = "due" if params.dry_run else "purged"
    print(f"{len(done)} batches {verb}" + "".join(f"; batch {b.batch_id} ({b.client})" for b in done))
    create_table_artifact(
        key="retention-purge",
        table=[b.model_dump(exclude={"rows"}) | {"rows": str(b.rows)} for b in done] or [{"batches": 0}],
        description=f"Retention purge{' (dry run)' if params.dry_run else ''}",
    )
    return PurgeResult(dry_run=params.dry_run, batches=done, leftover_folders=leftovers)
