"""Commands without a configured Prefect API share the state folder's local one, and the gate's
warm worker; both stop by themselves once idle. The real `nightshift` entry point, in processes
of its own, as an ops engineer runs it twice in a row."""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request
from pathlib import Path

import pytest

from nightshift.experts.registry import import_experts, parse_experts
from nightshift.platform.background import alive
from nightshift.platform.db import make_engine, make_sessionmaker, transaction
from nightshift.projects.registry import apply_spec
from nightshift.projects.spec import ProjectSpec
from tests.app.test_cli_errors import nightshift_process
from tests.conftest import SAMPLES
from tests.nightshift.ingest.test_ingest import good_row

IDLE_SECONDS = 15


def flow_run_names(api_url: str) -> list[str]:
    request = urllib.request.Request(
        f"{api_url}/flow_runs/filter", data=b"{}", headers={"content-type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        runs = json.loads(response.read())
    flows = {}
    for run in runs:
        with urllib.request.urlopen(f"{api_url}/flows/{run['flow_id']}", timeout=10) as response:
            flows[run["flow_id"]] = json.loads(response.read())["name"]
    return sorted(flows[run["flow_id"]] for run in runs)


def gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow(60)
def test_commands_share_a_local_prefect_api_and_a_warm_gate_worker_that_stop_when_idle(
    sqlite_template: Path, sample_spec: ProjectSpec, prefect_server_database: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    database = tmp_path / "nightshift.db"
    shutil.copyfile(sqlite_template, database)
    engine = make_engine(f"sqlite:///{database}")
    experts, errors = parse_experts(SAMPLES / "experts.jsonl")
    assert not errors
    with transaction(make_sessionmaker(engine)) as session:
        apply_spec(session, sample_spec)
        import_experts(session, experts)
    engine.dispose()
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"} | {
        "NIGHTSHIFT_HOME": str(home),
        "NIGHTSHIFT_DATABASE_URL": f"sqlite:///{database}",
        "PREFECT_HOME": str(home / "prefect"),
        # A copy of the run's migrated Prefect schema: the server's first start skips ~100 migrations.
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": prefect_server_database,
        "NIGHTSHIFT_LOCAL_PREFECT_IDLE_SECONDS": str(IDLE_SECONDS),
        "NIGHTSHIFT_GATE_WORKER_IDLE_SECONDS": str(IDLE_SECONDS),
    }
    started: list[int] = []
    try:
        for run in range(2):
            source = tmp_path / f"items-{run}.jsonl"
            source.write_text("".join(json.dumps(good_row(f"local-{run}-{i}")) + "\n" for i in range(20)))
            result = nightshift_process("ingest", str(source), "--project", sample_spec.project.slug, env=env)
            assert result.returncode == 0, result.stderr
            assert "accepted 20," in result.stdout
            api = json.loads((home / "run" / "prefect-api.json").read_text())
            gate = json.loads((home / "run" / "gate-worker.json").read_text())
            if run == 0:
                started = [api["pid"], gate["pid"]]
            # The second command found both running and used them.
            assert [api["pid"], gate["pid"]] == started
            assert alive(api["pid"]) and alive(gate["pid"])
        # Both runs are on the local API, where `prefect` commands and a UI pointed at it see them.
        assert flow_run_names(api["url"]) == ["ingest", "ingest"]
        assert (home / "run" / "gate-worker.json").stat().st_mode & 0o077 == 0
        # Nobody calls: both stop by themselves.
        assert gone(started[0], IDLE_SECONDS + 20)
        assert gone(started[1], IDLE_SECONDS + 20)
    finally:
        for pid in started:
            if alive(pid):
                os.kill(pid, 9)
