"""The ingest gate's worker process dies: the chunk in flight is retried on a new worker and
nothing is lost."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from flows.ingest import IngestParams, ingest_flow
from tasks.ingest import gate_worker
from tests.nightshift.ingest.test_ingest import good_row


def test_a_killed_gate_worker_is_replaced_and_its_chunk_retried(app_env, prefect_api, project, tmp_path: Path) -> None:
    worker = gate_worker()
    killed = worker.call(os.getpid)
    os.kill(killed, signal.SIGKILL)
    source = tmp_path / "items.jsonl"
    source.write_text("".join(json.dumps(good_row(f"w-{i}")) + "\n" for i in range(30)))
    result = ingest_flow(IngestParams(project="acme-scenarios", source=str(source), chunk_rows=10))
    assert [(f.accepted, f.duplicates, f.quarantined) for f in result.files] == [(30, 0, 0)]
    assert worker.pid not in (None, killed)
