"""Nightshift as ops run it: `nightshift stack` (a real Prefect server, two workers, the deployments
of prefect.yaml), stopped at the end by SIGTERM with nothing it started left running.

The nightly deployment is started through the API; it submits one advance-batch run per open batch
to the work pool, and each batch that passes review emits the event that starts its delivery.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
import yaml
from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings
from sqlalchemy import select

from app.receiver import Fault, WebhookReceiver
from nightshift.delivery.endpoints import new_webhook_secret
from nightshift.experts.registry import import_experts, parse_experts
from nightshift.platform.db import make_engine, make_sessionmaker, transaction
from nightshift.platform.models import Batch, Delivery, DeliveryMessage, Item
from nightshift.projects.registry import apply_spec
from nightshift.projects.spec import parse_spec
from tests.conftest import SAMPLES
from tests.nightshift.delivery.test_delivery import run_to_passed
from tests.servers.slack import SlackStandIn

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ("alpha", "beta", "gamma")  # gamma's webhook is down all night
ITEMS_PER_BATCH = 12


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spec(client: str, webhook_url: str) -> dict:
    spec = yaml.safe_load((SAMPLES / "spec.yaml").read_text())
    spec["client"] |= {
        "slug": client,
        "name": client.title(),
        "webhook_url": webhook_url,
        "webhook_secret": {"env": f"{client.upper()}_WEBHOOK_SECRET"},
        "slack_channel": f"#{client}-deliveries",
    }
    spec["project"]["slug"] = f"{client}-scenarios"
    spec["project"]["gates"]["min_time_on_task_seconds"] = 1
    spec["project"]["gates"]["reading_chars_per_second"] = None
    return spec


def _lines(first: int, count: int, path: Path) -> Path:
    path.write_text("".join((SAMPLES / "items.jsonl").read_text().splitlines(keepends=True)[first : first + count]))
    return path


def _runs(flow_runs: list, flow_ids: dict, name: str) -> list:
    """The runs of one flow's deployment (not the same flow run in-process as a subflow)."""
    return [run for run in flow_runs if flow_ids[run.flow_id] == name and run.deployment_id is not None]


@pytest.mark.slow(240)
@pytest.mark.timeout(900)
def test_the_nightly_deployment_spreads_over_two_workers_and_one_dead_webhook_holds_back_no_one(
    postgres_url: str, prefect_server_database: str, tmp_path: Path
) -> None:
    secrets = {client: new_webhook_secret() for client in CLIENTS}
    down = lambda _n: Fault(status=503)  # noqa: E731
    with ExitStack() as servers:
        receivers = {
            c: servers.enter_context(WebhookReceiver(secrets[c], down if c == "gamma" else None)) for c in CLIENTS
        }
        slack = servers.enter_context(SlackStandIn())
        # The day's work: each client's batch done by the experts and passed by its last review.
        sessions = make_sessionmaker(make_engine(postgres_url))
        experts, _ = parse_experts(SAMPLES / "experts.jsonl")
        with transaction(sessions) as session:
            import_experts(session, experts)
            for client in CLIENTS:
                apply_spec(session, parse_spec(_spec(client, receivers[client].url), f"{client}.yaml"))
        passed = {
            client: run_to_passed(
                sessions, _lines(0, ITEMS_PER_BATCH, tmp_path / f"{client}.jsonl"), f"{client}-scenarios"
            )
            for client in CLIENTS
        }
        # Tonight's new file from alpha, in the drop folder.
        drop = tmp_path / "drop"
        (drop / "alpha-scenarios").mkdir(parents=True)
        _lines(ITEMS_PER_BATCH, 8, drop / "alpha-scenarios" / "tonight.jsonl")

        # The stack as ops start it, `nightshift stack`, and stopped as a service manager stops it.
        stack = CliStack(
            home=tmp_path / "stack",
            port=_free_port(),
            options=["--workers", "2", "--worker-limit", "2", "--poll-seconds", "1", "--no-web", "--no-schedules"],
            env={
                "PREFECT_HOME": str(tmp_path / "stack" / "prefect"),
                "NIGHTSHIFT_HOME": str(tmp_path / "stack"),
                "NIGHTSHIFT_DATABASE_URL": postgres_url,
                "NIGHTSHIFT_DELIVERY_DIR": str(tmp_path / "deliveries"),
                "NIGHTSHIFT_SLACK_TOKEN": "xoxb-stack-secret",
                "NIGHTSHIFT_SLACK_BASE_URL": slack.base_url,
                # The stack's Prefect server on PostgreSQL, as production runs it.
                "PREFECT_SERVER_DATABASE_CONNECTION_URL": prefect_server_database,
            }
            | {f"{c.upper()}_WEBHOOK_SECRET": secrets[c] for c in CLIENTS},
        )
        with stack, temporary_settings({PREFECT_API_URL: stack.api_url}):
            nightly = run_deployment(
                "nightly/nightly", parameters={"params": {"drop_folder": str(drop)}}, timeout=600, poll_interval=2
            )
            # The deliveries the review events started may still be running, or about to start.
            deadline, settled_since = time.monotonic() + 300, None
            with get_client(sync_client=True) as client:
                while time.monotonic() < deadline:
                    flow_runs = client.read_flow_runs(limit=200)
                    flow_ids = {f.id: f.name for f in client.read_flows(limit=50)}
                    unfinished = client.read_flow_runs(
                        flow_run_filter=FlowRunFilter(
                            state=FlowRunFilterState(
                                type=FlowRunFilterStateType(
                                    any_=[StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING]
                                )
                            )
                        )
                    )
                    if unfinished:
                        settled_since = None
                    elif len(_runs(flow_runs, flow_ids, "deliver")) >= len(CLIENTS):
                        break
                    settled_since = settled_since or time.monotonic()
                    if time.monotonic() - settled_since > 60:
                        break
                    time.sleep(2)
                # Read again once settled: a run still running in the read above may have
                # finished before the check for unfinished runs found none.
                flow_runs = client.read_flow_runs(limit=200)
            worker_logs = [stack.log_of(f"worker-{n}") for n in (1, 2)]

        assert nightly.state is not None and nightly.state.is_completed(), nightly.state
        advances = _runs(flow_runs, flow_ids, "advance-batch")
        deliveries = _runs(flow_runs, flow_ids, "deliver")
        # One advance per open batch: the three passed ones and tonight's new file.
        assert sorted(r.parameters["params"]["batch_id"] for r in advances) == [*sorted(passed.values()), 4]
        assert all(r.state.is_completed() for r in advances + deliveries), [
            (r.name, r.state.type, r.state.message) for r in advances + deliveries if not r.state.is_completed()
        ]
        # Delivery was started by the batch.passed events, one per passed batch, with its batch id.
        assert sorted(r.parameters["params"]["batch_id"] for r in deliveries) == sorted(passed.values())

        taken = [set(re.findall(r"submitting flow run '([0-9a-f-]{36})'", log)) for log in worker_logs]
        assert taken[0] and taken[1], "both workers took work"
        assert {str(r.id) for r in [*advances, *deliveries]} <= taken[0] | taken[1]

        with sessions() as session:
            status = dict(session.execute(select(Batch.id, Batch.status)).all())
            assert status[passed["alpha"]] == status[passed["beta"]] == "delivered"
            # gamma's endpoint refused: its delivery waits for a retry; the others did not wait for it.
            assert status[passed["gamma"]] == "delivering"
            gamma_pages = session.scalars(
                select(DeliveryMessage).join(Delivery).where(Delivery.batch_id == passed["gamma"])
            ).all()
            assert gamma_pages and all(
                p.status == "retrying" and p.attempt_count >= 1 and "503" in (p.last_error or "") for p in gamma_pages
            )
            # Tonight's file was ingested and its items staffed.
            assert status[4] != "failed"
            assert session.scalars(select(Item.status).where(Item.batch_id == 4).distinct()).all() == ["assigned"]
        for client in ("alpha", "beta"):
            records = receivers[client].log.unique_records()
            assert len(records) == ITEMS_PER_BATCH - _gold_count(sessions, passed[client])
            assert receivers[client].log.rejected == 0
        assert receivers["gamma"].requests >= 1 and not receivers["gamma"].log.verified
        # Each delivered client's channel heard of it, from the run its event started.
        heard = {(m["channel"], m["text"].splitlines()[0]) for m in slack.messages}
        for client in ("alpha", "beta"):
            assert (f"#{client}-deliveries", f"Delivered batch {passed[client]} to {client}") in heard
        assert "xoxb-stack-secret" not in "".join(worker_logs)
    # SIGTERM stopped the stack's command, and with it every process it had started.
    assert stack.children, "the stack started its server and workers"
    assert stack.survivors == [], stack.survivors


class CliStack:
    """`nightshift stack` in a process of its own: up when it says so; on leaving, SIGTERM, and a
    record of which of the processes it had started outlived it (none should)."""

    def __init__(self, home: Path, port: int, options: list[str], env: dict[str, str]) -> None:
        self.home, self.port = home, port
        self.command = [sys.executable, "-m", "app.cli", "stack", "--port", str(port), *options]
        self.env = os.environ | env
        self.env.pop("PREFECT_API_URL", None)
        self.children: set[int] = set()
        self.survivors: list[int] = []
        self._process: subprocess.Popen[str] | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def log_of(self, name: str) -> str:
        return (self.home / "stack-logs" / f"{name}.log").read_text(errors="replace")

    def __enter__(self) -> CliStack:
        self._process = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert self._process.stdout is not None
        said = []
        for line in self._process.stdout:
            said.append(line)
            if "worker(s) on pool" in line:
                return self
        raise AssertionError(f"the stack did not start: {''.join(said)[-3000:]}")

    def __exit__(self, *exc: object) -> None:
        assert self._process is not None
        self.children = _descendants(self._process.pid)
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=90)
        finally:
            time.sleep(1)
            self.survivors = [pid for pid in self.children if _alive(pid)]
            for pid in self.survivors:
                os.kill(pid, signal.SIGKILL)
            if self._process.poll() is None:
                self._process.kill()


def _descendants(pid: int) -> set[int]:
    """Every process below pid, read from /proc by the test itself (ppid is field 4 of stat)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    """Running, and not a zombie its parent has yet to reap."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _gold_count(sessions, batch_id: int) -> int:
    with sessions() as session:
        return len(session.scalars(select(Item.id).where(Item.batch_id == batch_id, Item.is_gold)).all())
