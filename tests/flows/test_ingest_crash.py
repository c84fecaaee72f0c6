"""kill -9 in the middle of an ingest, run it again: exactly the right rows, none twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from nightshift.platform.db import make_engine, make_sessionmaker, transaction
from nightshift.platform.models import Batch, Item, QuarantinedRow
from nightshift.projects.registry import apply_spec
from nightshift.simulation.synthetic import generate_items

ROOT = Path(__file__).resolve().parents[2]
# Three chunks of 10,000: the kill lands after the first is stored and before the last.
ROWS, BAD_EVERY = 30_000, 1_000


@pytest.mark.slow(80)
def test_ingest_killed_half_way_and_run_again_ends_with_exactly_the_right_rows(
    postgres_url: str, prefect_api, sample_spec, tmp_path: Path
) -> None:
    from prefect.settings import PREFECT_API_URL

    path = tmp_path / "big.jsonl"
    with path.open("w") as out:
        for n, item in enumerate(generate_items(ROWS, seed=3, text_bytes=300)):
            out.write("{broken\n" if n % BAD_EVERY == 0 else json.dumps(item) + "\n")
    engine = make_engine(postgres_url)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        apply_spec(session, sample_spec)
    env = {**os.environ, "NIGHTSHIFT_DATABASE_URL": postgres_url, "PREFECT_API_URL": PREFECT_API_URL.value()}
    command = [sys.executable, "-m", "app.cli", "ingest", str(path), "-p", "acme-scenarios"]

    def items() -> int:
        with sessions() as session:
            return session.scalar(select(func.count()).select_from(Item)) or 0

    first = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while items() == 0 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    loaded_before_kill = items()
    assert 0 < loaded_before_kill < ROWS - ROWS // BAD_EVERY, "the kill must land half-way"
    with sessions() as session:
        assert session.scalars(select(Batch.ingest_completed_at)).one() is None

    again = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "resumed or re-read" in again.stdout

    with sessions() as session:
        assert items() == ROWS - ROWS // BAD_EVERY
        assert session.scalar(select(func.count(func.distinct(Item.external_id)))) == items()
        assert session.scalar(select(func.count()).select_from(QuarantinedRow)) == ROWS // BAD_EVERY
        assert session.scalars(select(Batch.ingest_completed_at)).one() is not None
    engine.dispose()
