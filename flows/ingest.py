"""Ingest a client file into a batch: chunks of rows validated and loaded, bad rows quarantined."""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.artifacts import create_table_artifact
from pydantic import BaseModel, Field

from flows.hooks import FAILURE_HOOKS
from nightshift.ingest import DEFAULT_CHUNK_ROWS, IngestCounts, check_source, read_jsonl_chunks
from tasks.ingest import load_item_chunk, open_ingest_batch


class IngestParams(BaseModel):
    project: str = Field(description="Slug of the project the items belong to.")
    source: str = Field(description="Path of a JSONL file of work items.")
    chunk_rows: int = Field(default=DEFAULT_CHUNK_ROWS, ge=1, le=100_000, description="Rows per task.")


class IngestResult(BaseModel):
    batch_id: int
    new_batch: bool
    read: int
    accepted: int
    duplicates: int
    conflicts: int
    quarantined: int
    quarantined_by_reason: dict[str, int]


@flow(name="ingest", log_prints=True, **FAILURE_HOOKS)
def ingest_flow(params: IngestParams) -> IngestResult:
    path = check_source(Path(params.source))
    batch_id, created = open_ingest_batch(params.project, str(path))
    totals = IngestCounts()
    for rows in read_jsonl_chunks(path, params.chunk_rows):
        counts = load_item_chunk(batch_id, str(path), rows, rows[0].line_number)
        totals.add(
            IngestCounts(
                read=counts["read"],
                accepted=counts["accepted"],
                duplicates=counts["duplicates"],
                conflicts=counts["conflicts"],
                quarantined=counts["quarantined"],
            )
        )
        totals.reasons.update(counts["quarantined_by_reason"])
    result = IngestResult(batch_id=batch_id, new_batch=created, **totals.as_dict())
    create_table_artifact(
        key="ingest-summary",
        table=[
            {"measure": k, "value": v}
            for k, v in result.model_dump(exclude={"quarantined_by_reason"}).items()
        ]
        + [{"measure": f"quarantined: {r}", "value": n} for r, n in result.quarantined_by_reason.items()],
        description=f"Ingest of {path.name} into batch {batch_id}",
    )
    return result
