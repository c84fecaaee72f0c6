"""Every endpoint across two experts and two clients: no key is 401, someone else's thing is 404."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from nightshift.platform.db import transaction
from nightshift.platform.models import ApiKey, Expert, utcnow

EXPERT_ENDPOINTS = [
    ("GET", "/api/expert/assignments", None),
    ("GET", "/api/expert/assignments/next", None),
    ("GET", "/api/expert/assignments/{task}", None),
    ("PUT", "/api/expert/assignments/{task}/draft", {"answer": {}}),
    ("POST", "/api/expert/assignments/{task}/submission", {"answer": {}}),
    ("POST", "/api/expert/assignments/{task}/skip", {"reason": "r"}),
    ("POST", "/api/expert/reviews/next", None),
    ("POST", "/api/expert/reviews/{task}/decision", {"decision": "approve"}),
    ("GET", "/api/expert/earnings", None),
]
CLIENT_ENDPOINTS = [
    ("GET", "/api/client/projects", None),
    ("GET", "/api/client/batches", None),
    ("GET", "/api/client/batches/{batch}", None),
    ("GET", "/api/client/batches/{batch}/deliveries", None),
    ("POST", "/api/client/batches/{batch}/redeliveries", {"reason": "r"}),
    ("POST", "/api/client/projects/{project}/batches/from-url", {"url": "http://127.0.0.1:9/x.jsonl"}),
]


def _call(world, token, method, path, body, **names):
    with world.http(token) as http:
        return http.request(method, path.format(**names), json=body)


def _names(world) -> dict:
    return {
        "task": world.open_tasks(world.annotators[0])[0],
        "batch": world.batches["acme"],
        "project": "acme-scenarios",
    }


@pytest.mark.parametrize(("method", "path", "body"), EXPERT_ENDPOINTS + CLIENT_ENDPOINTS)
def test_no_key_a_wrong_key_or_the_other_kind_of_key_is_401(world, method, path, body) -> None:
    names = _names(world)
    other_kind = world.client_keys["acme"] if path.startswith("/api/expert") else world.experts[world.annotators[0]]
    for token in (None, "nse_not-a-real-token", "garbage", other_kind):
        response = _call(world, token, method, path, body, **names)
        assert response.status_code == 401, (token and token[:4], response.text)
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path", "body"), [e for e in EXPERT_ENDPOINTS if "{task}" in e[1]])
def test_an_expert_never_reaches_another_experts_task(world, method, path, body) -> None:
    names = _names(world)
    other = world.experts[world.annotators[1]]
    response = _call(world, other, method, path, body, **names)
    assert response.status_code == 404, response.text
    # Nor does an id that does not exist answer any differently.
    assert _call(world, other, method, path, body, **{**names, "task": 10**9}).status_code == 404
    assert world.open_tasks(world.annotators[0])[0] == names["task"]


@pytest.mark.parametrize(("method", "path", "body"), [e for e in CLIENT_ENDPOINTS if "{" in e[1]])
def test_a_client_never_reaches_another_clients_batch_or_project(world, method, path, body) -> None:
    response = _call(world, world.client_keys["globex"], method, path, body, **_names(world))
    assert response.status_code == 404, response.text
    missing = {"batch": 10**9, "project": "no-such-project", "task": 0}
    assert _call(world, world.client_keys["globex"], method, path, body, **missing).status_code == 404


def test_listings_hold_only_the_callers_own(world) -> None:
    with world.http(world.client_keys["globex"]) as http:
        assert [p["slug"] for p in http.get("/api/client/projects").json()] == ["globex-scenarios"]
        assert [b["batch_id"] for b in http.get("/api/client/batches").json()] == [world.batches["globex"]]
    first, second = world.annotators
    with world.http(world.experts[first]) as http:
        mine = {t["assignment_id"] for t in http.get("/api/expert/assignments").json()}
    assert mine == set(world.open_tasks(first)) and not mine & set(world.open_tasks(second))


def test_a_revoked_key_and_a_paused_expert_are_refused(world) -> None:
    first, second = world.annotators
    with transaction(world.sessions) as session:
        session.execute(update(ApiKey).where(ApiKey.client_id.is_not(None)).values(revoked_at=utcnow()))
        session.execute(update(Expert).where(Expert.handle == second).values(status="paused"))
    assert _call(world, world.client_keys["acme"], "GET", "/api/client/batches", None).status_code == 401
    assert _call(world, world.experts[second], "GET", "/api/expert/assignments", None).status_code == 401
    assert _call(world, world.experts[first], "GET", "/api/expert/assignments", None).status_code == 200
