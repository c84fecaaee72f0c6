"""Schemathesis against the service's own OpenAPI document: generated requests never get a 500.

Requests carry real keys (an expert's token on expert routes, a client's key on client routes),
so the generated input reaches the domain code instead of stopping at 401. Each operation gets
its own Hypothesis run, driven here rather than through the pytest plugin, because the world
(database, service, keys) is a function-scoped fixture.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

EXAMPLES = 25


def test_generated_requests_never_get_a_server_error(world) -> None:
    schema = schemathesis.openapi.from_url(f"{world.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    failures: list[str] = []
    for operation in operations:
        path = operation.path
        token = world.client_keys["acme"] if path.startswith("/api/client") else world.experts[world.annotators[0]]
        if "upload" in path or "from-url" in path:
            continue  # ingest runs a Prefect flow: covered by tests/app/test_client_api.py
        _fuzz(operation, world.url, token, failures)
    assert not failures, failures[:5]


def _fuzz(operation, url: str, token: str, failures: list[str]) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case) -> None:
        response = case.call(base_url=url, headers={"Authorization": f"Bearer {token}"})
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}")

    check()
