"""Generation against the local model server over HTTP: every answer and failure stored once."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from app.model_server import ModelServerThread
from nightshift.generate import chunks
from nightshift.generate.client import OpenAIChatModel
from nightshift.generate.endpoints import Request
from nightshift.generate.responses import counts
from nightshift.generate.run import ask_all, run_to_end
from nightshift.platform.db import transaction
from nightshift.platform.models import Item, ModelResponse
from nightshift.platform.outside import EnvSecretResolver
from nightshift.projects.registry import apply_spec
from nightshift.simulation.model_answers import model_answer
from tests.conftest import with_generation
from tests.nightshift.ingest.test_ingest import good_row, ingest_file


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _batch(sessions, project, server: ModelServerThread, tmp_path: Path, n: int = 25, **endpoint: object) -> int:
    with transaction(sessions) as session:
        apply_spec(session, with_generation(project, server.url, **endpoint))
    rows = [good_row(f"g-{i}", prompt=f"Should Acme refinance loan number {i} this year?") for i in range(n)]
    rows[0]["context"] = "Acme's budget is 12 million."
    batch_id, _ = ingest_file(sessions, write_jsonl(tmp_path / "items.jsonl", rows))
    return batch_id


def _generate(sessions, batch_id: int, chunk_size: int = 10, force: bool = False) -> chunks.ChunkReport:
    with sessions() as session:
        plan = chunks.plan(session, batch_id, chunk_size)
    total = chunks.ChunkReport()
    for endpoint in plan.endpoints:
        for lo, hi in plan.ranges:
            got = chunks.generate_chunk(sessions, EnvSecretResolver(), batch_id, endpoint.name, lo, hi, force)
            total.asked += got.asked
            total.answered += got.answered
            total.failed += got.failed
            for kind, n in got.errors.items():
                total.errors[kind] = total.errors.get(kind, 0) + n
    return total


def _responses(sessions) -> list[ModelResponse]:
    with sessions() as session:
        return list(session.scalars(select(ModelResponse).order_by(ModelResponse.item_id, ModelResponse.take)))


def test_each_item_is_answered_once_and_a_forced_run_adds_a_take(sessions, project, model_server, tmp_path) -> None:
    batch_id = _batch(sessions, project, model_server, tmp_path, parameters={"temperature": 0.2, "seed": 7})
    first = _generate(sessions, batch_id)
    assert (first.asked, first.answered, first.failed) == (25, 25, 0)
    stored = _responses(sessions)
    assert len(stored) == 25 and {r.status for r in stored} == {"ok"} and {r.take for r in stored} == {1}
    with sessions() as session:
        payload = session.get_one(Item, stored[0].item_id).payload
    expected = model_answer("nightshift-sim", f"{payload['context']}\n\n{payload['prompt']}", 7)
    assert stored[0].content == expected.text and stored[0].prompt_tokens and stored[0].completion_tokens
    assert stored[0].parameters == {"temperature": 0.2, "seed": 7} and stored[0].attempts == 1

    asked = model_server.app.requests
    again = _generate(sessions, batch_id)
    assert again.asked == 0 and model_server.app.requests == asked, "a re-run asks nothing answered"

    forced = _generate(sessions, batch_id, force=True)
    assert forced.answered == 25
    takes = _responses(sessions)
    assert len(takes) == 50 and sorted({r.take for r in takes}) == [1, 2]
    with sessions() as session:
        assert counts(session, batch_id) == {("local", "ok"): 25}


@pytest.mark.parametrize(
    ("model", "error"),
    [
        ("sim-broken-500", "HTTP 500"),
        ("sim-broken-429", "HTTP 429"),
        ("sim-broken-garbage", "malformed response: JSONDecodeError"),
        ("sim-broken-timeout", "APITimeoutError"),
    ],
)
def test_a_failing_endpoint_is_recorded_as_data_and_asked_again(
    sessions, project, model_server, tmp_path, model: str, error: str
) -> None:
    batch_id = _batch(sessions, project, model_server, tmp_path, n=4, model=model, max_retries=1, timeout_seconds=0.3)
    report = _generate(sessions, batch_id)
    assert (report.answered, report.failed) == (0, 4) and report.errors == {error: 4}
    stored = _responses(sessions)
    assert {(r.status, r.error, r.attempts, r.content) for r in stored} == {("failed", error, 2, None)}
    _generate(sessions, batch_id)
    assert {(r.take, r.attempts) for r in _responses(sessions)} == {(1, 4)}, "the failed take is asked again"


def test_a_flaky_endpoint_is_retried_to_an_answer_for_every_item(sessions, project, model_server, tmp_path) -> None:
    batch_id = _batch(
        sessions, project, model_server, tmp_path, n=12, model="sim-flaky", max_retries=2, timeout_seconds=0.5
    )
    report = _generate(sessions, batch_id, chunk_size=100)
    assert (report.answered, report.failed) == (12, 0)
    assert {r.attempts for r in _responses(sessions)} == {2}, "each item's first request failed, its retry answered"


def test_requests_in_flight_and_per_minute_stay_within_the_endpoint_limits(sessions, project, tmp_path) -> None:
    with ModelServerThread(delay_seconds=0.05) as server:
        batch_id = _batch(sessions, project, server, tmp_path, n=24, max_concurrent=3)
        _generate(sessions, batch_id, chunk_size=100)
        assert server.app.most_in_flight == 3, (server.app.requests, server.app.most_in_flight)

    with ModelServerThread() as server:
        with transaction(sessions) as session:
            apply_spec(session, with_generation(project, server.url, per_minute=1200))
        rows = [good_row(f"p-{i}", prompt=f"Paced prompt number {i} for the model.") for i in range(11)]
        batch_id, _ = ingest_file(sessions, write_jsonl(tmp_path / "b" / "paced.jsonl", rows))
        started = time.monotonic()
        _generate(sessions, batch_id, chunk_size=100)
        assert time.monotonic() - started >= 0.5, "11 requests at 1,200 a minute take half a second"


def test_answers_are_written_in_groups_and_a_slow_models_soon() -> None:
    requests = [Request(i, 1, [{"role": "user", "content": f"Prompt number {i} for the model."}]) for i in range(7)]

    def ask(server: ModelServerThread, **flush: float) -> list[tuple[int, float]]:
        writes: list[tuple[int, float]] = []
        started = time.monotonic()

        async def run() -> None:
            model = OpenAIChatModel(server.url, "nightshift-sim", None, {}, 10, 0)
            try:
                await ask_all(
                    model,
                    requests,
                    lambda r, a: {"item": r.item_id},
                    lambda rows: writes.append((len(rows), time.monotonic() - started)),
                    1,
                    **flush,  # type: ignore[arg-type]
                )
            finally:
                await model.close()

        run_to_end(run())
        return writes

    with ModelServerThread() as server:
        assert [n for n, _ in ask(server, flush_every=3)] == [3, 3, 1]
    # One answer every 0.1 s: the first rows are written once the oldest waited 0.25 s, not at the end.
    # No bound on the clock: under a loaded suite the answers themselves come late (0.68 s seen).
    with ModelServerThread(delay_seconds=0.1) as server:
        writes = ask(server, flush_after_seconds=0.25)
    assert sum(n for n, _ in writes) == 7 and len(writes) >= 2 and writes[0][0] < 7, writes


def test_the_api_key_goes_to_the_endpoint_and_nowhere_else(
    sessions, project, model_server, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("NS_TEST_MODEL_KEY", "sk-test-secret-42")
    batch_id = _batch(sessions, project, model_server, tmp_path, n=3, api_key={"env": "NS_TEST_MODEL_KEY"})
    _generate(sessions, batch_id)
    assert model_server.app.authorizations == {"Bearer sk-test-secret-42"}
    with sessions() as session:
        stored = str([r.__dict__ for r in session.scalars(select(ModelResponse))])
        spec = str(session.execute(select(ModelResponse.parameters)).all())
    assert "sk-test-secret-42" not in stored + spec
