"""kill -9 in the middle of sending a delivery, run it again: every record arrives, none is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from app.receiver import Fault, WebhookReceiver
from nightshift.experts.registry import import_experts, parse_experts
from nightshift.platform.db import make_engine, make_sessionmaker, transaction
from nightshift.platform.models import Batch, Client, Delivery, DeliveryMessage, Item
from nightshift.projects.registry import apply_spec
from tests.conftest import SAMPLES
from tests.nightshift.delivery.test_delivery import run_to_passed

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow(100)
def test_a_delivery_killed_half_way_resumes_without_losing_a_record(
    postgres_url: str, prefect_api, sample_spec, webhook_secret: str, tmp_path: Path
) -> None:
    from prefect.settings import PREFECT_API_URL

    engine = make_engine(postgres_url)
    sessions = make_sessionmaker(engine)
    rows, _ = parse_experts(SAMPLES / "experts.jsonl")
    with transaction(sessions) as session:
        apply_spec(session, sample_spec)
        import_experts(session, rows)
    batch_id = run_to_passed(sessions)
    env = {
        **os.environ,
        "NIGHTSHIFT_DATABASE_URL": postgres_url,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "NIGHTSHIFT_DELIVERY_DIR": str(tmp_path / "store"),
        # Small pages, so there are many to be half-way through; a short lease, so the pages the
        # killed sender held come due again soon.
        "NIGHTSHIFT_WEBHOOK_PAGE_BYTES": "20000",
        "NIGHTSHIFT_WEBHOOK_LEASE_SECONDS": "2",
        "NIGHTSHIFT_WEBHOOK_CLAIM_PAGES": "3",
    }
    command = [sys.executable, "-m", "app.cli", "deliver", "--batch", str(batch_id)]
    slow = Fault(delay_seconds=0.3, accept=True)
    with WebhookReceiver(webhook_secret, lambda n: slow) as receiver:
        with transaction(sessions) as session:
            session.get_one(Client, 1).webhook_url = receiver.url
        first = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 180
        while len(receiver.log.verified) < 5 and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait()
        with sessions() as session:
            statuses = session.scalars(select(DeliveryMessage.status)).all()
        assert 0 < statuses.count("delivered") < len(statuses), "the kill must land half-way"
        time.sleep(2.5)
        again = subprocess.run(
            [sys.executable, "-m", "app.cli", "deliver"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        assert again.returncode == 0, again.stderr
    with sessions() as session:
        assert set(session.scalars(select(DeliveryMessage.status))) == {"delivered"}
        assert session.scalars(select(Delivery.status)).all() == ["delivered"]
        assert session.get_one(Batch, batch_id).status == "delivered"
        expected = set(session.scalars(select(Item.external_id).where(Item.status == "delivered")))
    assert len(expected) == 228 and set(receiver.log.unique_records()) == expected
    assert receiver.log.rejected == 0
    engine.dispose()
