"""Ingest sources through the flow: a folder (each file once), a glob, an http URL."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.local_server import LocalServer, QuietHandler
from flows.ingest import IngestParams, ingest_flow
from nightshift.platform.db import make_engine, make_sessionmaker
from nightshift.platform.errors import SourceError
from nightshift.platform.models import Batch, Item
from tests.app.test_cli_errors import nightshift
from tests.nightshift.ingest.test_ingest import good_row


def write(path: Path, ids: list[str]) -> Path:
    path.write_text("".join(json.dumps(good_row(i)) + "\n" for i in ids))
    return path


def counts(url: str) -> tuple[int, int]:
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        result = (
            session.scalar(select(func.count()).select_from(Item)) or 0,
            session.scalar(select(func.count()).select_from(Batch)) or 0,
        )
    engine.dispose()
    return result


def test_a_drop_folder_ingests_each_file_once(app_env, prefect_api, project, tmp_path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    write(drop / "a.jsonl", ["a-1", "a-2"])
    write(drop / "b.jsonl", ["b-1"])
    (drop / "notes.txt").write_text("not an items file")
    first = ingest_flow(IngestParams(project="acme-scenarios", source=str(drop)))
    assert [(Path(f.source).name, f.accepted) for f in first.files] == [("a.jsonl", 2), ("b.jsonl", 1)]
    write(drop / "c.jsonl", ["c-1"])
    second = ingest_flow(IngestParams(project="acme-scenarios", source=str(drop)))
    assert [(Path(f.source).name, f.skipped, f.accepted) for f in second.files] == [
        ("a.jsonl", True, 0),
        ("b.jsonl", True, 0),
        ("c.jsonl", False, 1),
    ]
    assert counts(app_env) == (4, 3)


def test_a_glob_picks_the_matching_files(app_env, prefect_api, project, tmp_path) -> None:
    write(tmp_path / "x-1.jsonl", ["x-1"])
    write(tmp_path / "x-2.jsonl", ["x-2"])
    write(tmp_path / "y.jsonl", ["y"])
    result = ingest_flow(IngestParams(project="acme-scenarios", source=str(tmp_path / "x-*.jsonl")))
    assert result.total("accepted") == 2
    with pytest.raises(SourceError, match=r"no \.jsonl, \.csv or \.parquet file matches"):
        ingest_flow(IngestParams(project="acme-scenarios", source=str(tmp_path / "z-*.jsonl")))


def test_an_http_url_is_fetched_and_ingested(app_env, prefect_api, project, tmp_path, monkeypatch) -> None:
    from tasks.runtime import reset_resources

    # The stand-in file server is on 127.0.0.1: not public, so allowlisted as a source here.
    monkeypatch.setenv("NIGHTSHIFT_SOURCE_ALLOWLIST", '["127.0.0.1"]')
    reset_resources()
    body = write(tmp_path / "served.jsonl", ["u-1", "u-2"]).read_bytes()

    class Files(QuietHandler):
        def do_GET(self) -> None:
            self.reply(200, body) if self.path == "/batches/served.jsonl" else self.reply(404)

    with LocalServer(Files) as server:
        result = ingest_flow(IngestParams(project="acme-scenarios", source=f"{server.origin}/batches/served.jsonl"))
        assert result.total("accepted") == 2
        with pytest.raises(SourceError, match="cannot fetch"):
            ingest_flow(IngestParams(project="acme-scenarios", source=f"{server.origin}/missing.jsonl"))


def test_an_unreachable_url_is_one_line_and_writes_nothing(app_env, prefect_api, project) -> None:
    from prefect.settings import PREFECT_API_URL

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "NIGHTSHIFT_DATABASE_URL": app_env,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "NIGHTSHIFT_SOURCE_ALLOWLIST": '["127.0.0.1"]',
    }
    # The CLI's entry point in this process (its one-line error and exit code, as in a shell).
    result = nightshift("ingest", f"http://127.0.0.1:{port}/x.jsonl", "-p", "acme-scenarios", env=env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: cannot fetch http://127.0.0.1:{port}/x.jsonl: not a reachable public address, or no file there"
    )
    assert counts(app_env) == (0, 0)
