"""The real `nightshift` entry point: every bad call gets one clear line and a non-zero exit."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from sqlalchemy import func, select

from nightshift.platform.db import make_engine
from nightshift.platform.models import Expert
from tests.conftest import SAMPLES


def nightshift_process(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The real entry point in a process of its own: for the few true end-to-end runs."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )


@contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def nightshift(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The CLI's entry point (main: its one-line errors and exit codes) run in this process, with
    these arguments and this environment, its output captured: a subprocess cost ~4 s each."""
    from app.cli import main
    from tasks.runtime import reset_resources

    out, err = io.StringIO(), io.StringIO()
    logger = logging.getLogger("nightshift")
    handlers, propagate = list(logger.handlers), logger.propagate
    code: int = 0
    with _environment(env), redirect_stdout(out), redirect_stderr(err):
        reset_resources()
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        finally:
            reset_resources()
            logger.handlers[:] = handlers
            logger.propagate = propagate
    return subprocess.CompletedProcess(["nightshift", *args], code, out.getvalue(), err.getvalue())


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "NIGHTSHIFT_DATABASE_URL": db_url, "NIGHTSHIFT_HOME": str(tmp_path / "home")}


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_a_bad_spec_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((SAMPLES / "spec.yaml").read_text().replace("type: ordinal_scale", "type: slider"))
    # Through the installed entry point in a process of its own: the true end-to-end run.
    line = one_line_error(nightshift_process("project", "apply", str(bad), env=env))
    assert line.startswith(f"error: {bad}: project.labels.0: Input tag 'slider'")


def test_a_spec_with_an_unsafe_webhook_url_is_refused_in_one_line(env: dict[str, str], tmp_path: Path) -> None:
    unsafe = tmp_path / "unsafe.yaml"
    text = (SAMPLES / "spec.yaml").read_text().replace("http://127.0.0.1:8787", "https://169.254.169.254")
    unsafe.write_text(text)
    line = one_line_error(nightshift("project", "apply", str(unsafe), env=env))
    assert line == "error: webhook host 169.254.169.254 is not a public address (169.254.169.254 is link-local)"


def test_a_missing_file_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    line = one_line_error(nightshift_process("ingest", str(tmp_path / "nope.jsonl"), "--project", "acme", env=env))
    assert line == f"error: file not found: {tmp_path / 'nope.jsonl'}"


def test_an_unknown_project_is_one_line(env: dict[str, str]) -> None:
    line = one_line_error(nightshift("ingest", str(SAMPLES / "items.jsonl"), "--project", "nope", env=env))
    assert line == "error: unknown project 'nope' (known: none)"


def test_an_unknown_batch_is_one_line(env: dict[str, str]) -> None:
    assert one_line_error(nightshift("dispatch", "--batch", "99", env=env)) == "error: unknown batch 99"


def test_an_unmigrated_database_says_what_to_run(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "NIGHTSHIFT_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}",
        "NIGHTSHIFT_HOME": str(tmp_path),
    }
    line = one_line_error(nightshift("status", env=env))
    assert line.endswith("run `nightshift db upgrade`")


def test_bad_expert_rows_are_listed_and_nothing_is_imported(env: dict[str, str], tmp_path: Path) -> None:
    experts = tmp_path / "experts.jsonl"
    good = (SAMPLES / "experts.jsonl").read_text().splitlines()[0]
    experts.write_text(good + "\n" + good.replace('"timezone": "', '"timezone": "Mars/') + "\n{oops\n")
    result = nightshift("experts", "import", str(experts), env=env)
    assert result.returncode == 1
    assert "line 2: timezone: Value error, unknown time zone" in result.stderr
    assert "line 3: not valid JSON" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"error: 2 bad rows in {experts}: nothing imported"
    engine = make_engine(env["NIGHTSHIFT_DATABASE_URL"])
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Expert)) == 0
    engine.dispose()
