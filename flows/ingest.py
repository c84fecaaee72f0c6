"""Ingest client files into batches: chunks validated, gated and loaded; bad rows quarantined."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from prefect import flow
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.futures import PrefectFuture
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote
from pydantic import BaseModel, Field

from flows.generate import GenerateParams, generate_flow
from flows.hooks import FAILURE_HOOKS
from nightshift.ingest.formats import detect_format, read_chunks
from nightshift.ingest.rows import DEFAULT_CHUNK_ROWS, IngestCounts
from tasks.ingest import finish_ingest, load_item_chunk, open_ingest_batch, resolve_source

# Set by a face that wants to show progress (the CLI's bar); called with (file name, share done).
progress_listener: ContextVar[Callable[[str, float], None] | None] = ContextVar("progress_listener", default=None)
# The progress artifact is a call to the Prefect API: at most this often, not once per chunk.
PROGRESS_EVERY_SECONDS = 2.0
# Three chunks in flight while the next is read: one validated in Python while the database
# stores another; fewer leave a core idle (measured with bench/ingest.py).
IN_FLIGHT = 3


class IngestParams(BaseModel):
    project: str = Field(description="Slug of the project the items belong to.")
    source: str = Field(description="A file, a glob (data/*.jsonl.gz), a drop folder, or an http(s) URL.")
    format: Literal["auto", "jsonl", "csv", "parquet"] = Field(
        default="auto", description="File format; auto reads it from the name (.jsonl, .csv, .parquet, + .gz)."
    )
    chunk_rows: int = Field(default=DEFAULT_CHUNK_ROWS, ge=1, le=100_000, description="Rows per task.")
    force: bool = Field(default=False, description="Read files again even if already fully ingested.")
    generate: bool = Field(
        default=True,
        description="Then have the project's models answer the new items (projects whose spec has generation).",
    )


class FileResult(BaseModel):
    source: str
    batch_id: int
    new_batch: bool
    skipped: bool
    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    quarantined: int = 0
    quarantined_by_reason: dict[str, int] = {}
    problems: list[str] = []
    # Personal data found (kind -> count), redacted, quarantined or allowed as the project says.
    personal_data: dict[str, int] = {}
    generates: bool = False


class IngestResult(BaseModel):
    files: list[FileResult]

    @property
    def batch_id(self) -> int:
        return self.files[0].batch_id

    def total(self, measure: str) -> int:
        return sum(int(getattr(f, measure)) for f in self.files)


@flow(name="ingest", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=IN_FLIGHT), **FAILURE_HOOKS)
def ingest_flow(params: IngestParams) -> IngestResult:
    paths = resolve_source(params.source)
    results = [ingest_file(params, Path(p)) for p in paths]
    create_table_artifact(
        key="ingest-summary",
        table=[
            r.model_dump(exclude={"quarantined_by_reason", "problems", "personal_data"})
            | {
                "quarantined by reason": str(r.quarantined_by_reason),
                "problems": "; ".join(r.problems),
                "personal data found": str(r.personal_data),
            }
            for r in results
        ],
        description=f"Ingest of {params.source} into {params.project}",
    )
    if params.generate:
        for batch_id in dict.fromkeys(r.batch_id for r in results if r.generates and not r.skipped):
            # Its own flow run: a model that is down leaves the ingest done, and the nightly run asks again.
            generated = generate_flow(GenerateParams(batch_id=batch_id), return_state=True)
            if not generated.is_completed():
                print(f"batch {batch_id}: generation did not finish ({generated.type.value}); the next run asks again")
    return IngestResult(files=results)


def ingest_file(params: IngestParams, path: Path) -> FileResult:
    fmt, compressed = detect_format(path, None if params.format == "auto" else params.format)
    opened = open_ingest_batch(params.project, str(path), fmt)
    if opened.completed and not params.force:
        return FileResult(
            source=str(path), batch_id=opened.batch_id, new_batch=False, skipped=True, generates=opened.generates
        )
    listener = progress_listener.get()
    progress = create_progress_artifact(progress=0.0, description=f"Ingesting {path.name}")
    totals = IngestCounts()
    pending: deque[PrefectFuture[dict[str, Any]]] = deque()
    reported = time.monotonic()
    for rows, done in read_chunks(path, fmt, compressed, params.chunk_rows):
        if not rows:
            continue
        # quote(): Prefect would otherwise walk every row of the chunk looking for futures.
        # A file never seen before holds new ids, most likely: its chunks skip the lookup of known
        # ids until one finds some (a client sending items again under a new file, say).
        expect_new = opened.created and not (totals.duplicates or totals.conflicts)
        pending.append(load_item_chunk.submit(opened.batch_id, str(path), quote(rows), rows[0].line_number, expect_new))
        if len(pending) >= IN_FLIGHT:
            totals.add(IngestCounts.from_dict(pending.popleft().result()))
        if time.monotonic() - reported >= PROGRESS_EVERY_SECONDS:
            update_progress_artifact(progress, progress=round(done * 100, 1))
            reported = time.monotonic()
        if listener:
            listener(path.name, done)
    while pending:
        totals.add(IngestCounts.from_dict(pending.popleft().result()))
    finish_ingest(opened.batch_id)
    update_progress_artifact(progress, progress=100.0)
    return FileResult(
        source=str(path),
        batch_id=opened.batch_id,
        new_batch=opened.created,
        skipped=False,
        generates=opened.generates,
        **totals.as_dict(),
    )
