from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from expectations.ingest_chunk import check_chunk
from expectations.worker import GateWorker, shared_worker
from nightshift.ingest import batches, sources, store
from nightshift.ingest import rows as ingest_rows
from nightshift.ingest.formats import SourceRow
from nightshift.platform.db import transaction
from nightshift.platform.errors import NightshiftError
from nightshift.platform.models import Batch
from nightshift.platform.sql import data_error_name, is_row_data_error
from nightshift.projects.registry import project_spec
from tasks.runtime import DB_TASK, resources


class ChunkRefused(NightshiftError):
    """A chunk the database would not store, named by its first line and the error's class."""


def _retry_fetch(task: Any, task_run: Any, state: Any) -> bool:
    """A fetch that timed out or lost its connection is tried again; a refused one is not."""
    try:
        state.result()
    except sources.FetchRefused as exc:
        return exc.transient
    except Exception:
        return False
    return False


@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=3, retry_condition_fn=_retry_fetch)
def resolve_source(source: str) -> list[str]:
    """Local paths for a file, glob, folder or URL (fetched into the state folder)."""
    if sources.is_url(source):
        res = resources()
        settings = res.settings
        fetched = sources.fetch(
            source,
            settings.home / "downloads",
            settings.source_allowlist,
            settings.source_timeout_seconds,
            settings.max_upload_bytes,
            res.resolver,
        )
        return [str(fetched)]
    return [str(p.resolve()) for p in sources.expand(source)]


@task(cache_policy=NO_CACHE, **DB_TASK)
def open_ingest_batch(project: str, source: str, fmt: str) -> batches.OpenedBatch:
    # The gate's worker loads GX (seconds, cold) on the other core while the file's checksum is
    # taken here, so the first chunks do not wait for it; the CLI warms it earlier still.
    gate_worker().warm_in_background()
    with transaction(resources().sessions) as session:
        return batches.open_batch(session, project, Path(source), fmt)


@task(cache_policy=NO_CACHE, task_run_name="load-rows-from-{first_line}", **DB_TASK)
def load_item_chunk(
    batch_id: int, source: str, rows: list[SourceRow], first_line: int, expect_new: bool = False
) -> dict[str, Any]:
    """Validate rows, gate the chunk with Great Expectations, store it: one transaction.

    expect_new: the file was never seen, so look its ids up only if storing finds some known."""
    res = resources()
    with res.sessions() as session:
        project = project_spec(session, session.get_one(Batch, batch_id).project_id).project
    prepared = ingest_rows.prepare_chunk(batch_id, source, rows, project)
    try:
        with transaction(res.sessions) as session:
            if not expect_new:
                store.set_aside_known(session, batch_id, source, prepared)
            ingest_rows.refuse(prepared, batch_id, source, check_chunk(prepared.items, project, gate_worker()))
            return store.store_chunk(session, batch_id, source, prepared, known_set_aside=not expect_new).as_dict()
    except Exception as exc:
        # The database's own message quotes the value it refused: the run's state, its log and
        # ops' alert get the error's class only.
        if is_row_data_error(exc):
            raise ChunkRefused(
                f"rows from line {first_line}: the database refused a value ({data_error_name(exc)})"
            ) from None
        raise


def gate_worker() -> GateWorker:
    """The chunk gate's worker: shared with the state folder's other commands while warm."""
    settings = resources().settings
    return shared_worker(settings.home, settings.gate_worker_idle_seconds)


@task(cache_policy=NO_CACHE, **DB_TASK)
def finish_ingest(batch_id: int) -> None:
    with transaction(resources().sessions) as session:
        batches.mark_ingest_complete(session, batch_id)
