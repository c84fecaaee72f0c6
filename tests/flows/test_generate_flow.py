"""Generation through Prefect: ingest hands the batch over, a failing model is data, a re-run asks
again only what failed, and each endpoint has its concurrency limit on the Prefect API."""

from __future__ import annotations

import json
from pathlib import Path

from prefect import get_client
from sqlalchemy import func, select

from flows.dispatch import DispatchParams, dispatch_flow
from flows.generate import GenerateParams, generate_flow
from flows.ingest import IngestParams, ingest_flow
from nightshift.platform.db import make_engine, make_sessionmaker, transaction
from nightshift.platform.models import ModelResponse
from nightshift.projects.registry import apply_spec
from nightshift.projects.spec import ProjectSpec
from tasks.generate import endpoint_tag
from tests.nightshift.ingest.test_ingest import good_row


def _spec(project: ProjectSpec, url: str) -> ProjectSpec:
    data = project.model_dump(mode="json")
    data["project"]["generation"] = {
        "prompt_field": "prompt",
        "endpoints": [
            {"name": "local", "base_url": url, "model": "nightshift-sim", "parameters": {"seed": 3}},
            {"name": "down", "base_url": url, "model": "sim-broken-500", "max_retries": 0},
        ],
    }
    return ProjectSpec.model_validate(data)


def test_ingest_hands_the_batch_to_generation_and_a_rerun_asks_only_what_failed(
    app_env, prefect_api, project, model_server, tmp_path: Path
) -> None:
    sessions = make_sessionmaker(make_engine(app_env))
    with transaction(sessions) as session:
        apply_spec(session, _spec(project, model_server.url))
    items = tmp_path / "items.jsonl"
    items.write_text(
        "".join(json.dumps(good_row(f"m-{i}", prompt=f"Scenario {i}: what next?")) + "\n" for i in range(30))
    )

    ingested = ingest_flow(IngestParams(project="acme-scenarios", source=str(items)))
    batch_id = ingested.batch_id

    def by_endpoint() -> dict[tuple[str, str], int]:
        with sessions() as session:
            rows = session.execute(
                select(ModelResponse.endpoint, ModelResponse.status, func.count()).group_by(
                    ModelResponse.endpoint, ModelResponse.status
                )
            )
            return {(e, s): n for e, s, n in rows}

    assert by_endpoint() == {("local", "ok"): 30, ("down", "failed"): 30}
    asked = model_server.app.requests
    again = generate_flow(GenerateParams(batch_id=batch_id, chunk_size=10))
    results = {e.endpoint: e for e in again.endpoints}
    assert (results["local"].asked, results["down"].asked) == (0, 30)
    assert results["down"].errors == {"HTTP 500": 30} and results["down"].items_failed == 30
    assert results["local"].items_answered == 30
    assert model_server.app.requests == asked + 30

    forced = generate_flow(GenerateParams(batch_id=batch_id, endpoints=["local"], force=True, chunk_size=10))
    assert [(e.endpoint, e.answered) for e in forced.endpoints] == [("local", 30)]
    with sessions() as session:
        assert session.scalar(select(func.max(ModelResponse.take)).where(ModelResponse.endpoint == "local")) == 2

    with get_client(sync_client=True) as client:
        limit = client.read_concurrency_limit_by_tag(endpoint_tag("acme-scenarios", "local"))
    assert limit.concurrency_limit == 1

    # Experts get no item a model has not answered: with "down" failing, all 30 wait.
    held = dispatch_flow(DispatchParams(batch_id=batch_id))
    assert (held.assignments, held.awaiting_models) == (0, 30)
    # Ops take the broken endpoint out of the spec: the items are staffed.
    spec = _spec(project, model_server.url).model_dump(mode="json")
    spec["project"]["generation"]["endpoints"] = spec["project"]["generation"]["endpoints"][:1]
    with transaction(sessions) as session:
        apply_spec(session, ProjectSpec.model_validate(spec))
    staffed = dispatch_flow(DispatchParams(batch_id=batch_id))
    assert staffed.awaiting_models == 0 and staffed.assignments >= 30


def test_runs_creating_an_endpoint_limit_at_once_all_go_on(prefect_api) -> None:
    # Two batches of one project generating at once both find no limit and both create it: the
    # second must take the first's, not fail its run (the demo and a test did, on one server).
    from concurrent.futures import ThreadPoolExecutor
    from uuid import uuid4

    from prefect import get_client

    from tasks.generate import ensure_endpoint_limits

    tags = [f"model:race-{uuid4().hex[:8]}:local-{k}" for k in range(3)]
    with ThreadPoolExecutor(8) as pool:
        for done in [pool.submit(ensure_endpoint_limits, tags) for _ in range(8)]:
            done.result()
    with get_client(sync_client=True) as client:
        assert [client.read_concurrency_limit_by_tag(tag).concurrency_limit for tag in tags] == [1, 1, 1]
