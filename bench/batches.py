"""A bench's batch, loaded through the core's own ingest (no flow): the spec applied, the experts
imported, the file copied in chunk by chunk, the batch marked complete. Imports stay inside the
function, so a bench imports only what it measures."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load_batch(sessions: Any, spec: Any, experts: list[Any], path: Path) -> int:
    """Returns the new batch's id. spec: a parsed ProjectSpec; experts: ExpertRow values; path: a
    JSONL file of items."""
    from nightshift.experts.registry import import_experts
    from nightshift.ingest.batches import mark_ingest_complete, open_batch
    from nightshift.ingest.formats import read_chunks
    from nightshift.ingest.store import load_chunk
    from nightshift.platform.db import transaction
    from nightshift.projects.registry import apply_spec

    with transaction(sessions) as session:
        apply_spec(session, spec)
        import_experts(session, experts)
        batch_id: int = open_batch(session, spec.project.slug, path, "jsonl").batch_id
    for rows, _ in read_chunks(path, "jsonl", False, 5_000):
        with transaction(sessions) as session:
            load_chunk(session, batch_id, str(path), rows)
    with transaction(sessions) as session:
        mark_ingest_complete(session, batch_id)
    return batch_id
