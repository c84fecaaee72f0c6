"""Values that broke the service with a 500 (a NUL, a lone surrogate, NaN, deep nesting, a number of
thousands of digits, a huge body): each is a 4xx now, through the API and the pages, and nothing is
stored. Generated bodies and forms never get a 5xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from nightshift.platform.models import AssignmentDraft, Review, Submission
from tests.app.test_expert_api import GOOD

NUL = "\u0000"


def _count(world, model) -> int:
    with world.sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def _raw(http: httpx.Client, method: str, path: str, body: bytes) -> httpx.Response:
    return http.request(method, path, content=body, headers={"content-type": "application/json"})


HOSTILE_ANSWERS = [
    b'{"answer": {"rationale": "a\\u0000b"}}',  # NUL
    b'{"answer": {"rationale": "\\ud800"}}',  # lone surrogate
    b'{"answer": {"rating": NaN}}',
    b'{"answer": {"rating": Infinity}}',
    b'{"answer": {"rating": ' + b"9" * 5000 + b"}}",  # past Python's int() limit
    b'{"answer": {"rating": ' + b"9" * 300 + b"}}",  # past 64 bits
    b'{"answer": {"rationale": ' + b"[" * 5000 + b"]" * 5000 + b"}}",
    b'{"answer": {"rationale": ' + b"[" * 40 + b"]" * 40 + b"}}",
    b'{"answer": {"rat\\u0000ionale": "x"}}',  # NUL in a key
]


@pytest.mark.parametrize("body", HOSTILE_ANSWERS, ids=range(len(HOSTILE_ANSWERS)))
def test_hostile_values_in_a_draft_or_a_submission_are_refused_not_stored(world, body: bytes) -> None:
    handle = world.annotators[0]
    task_id = world.open_tasks(handle)[0]
    with world.http(world.experts[handle]) as http:
        draft = _raw(http, "PUT", f"/api/expert/assignments/{task_id}/draft", body)
        submitted = _raw(http, "POST", f"/api/expert/assignments/{task_id}/submission", body)
    assert 400 <= draft.status_code < 500, draft.text
    assert 400 <= submitted.status_code < 500, submitted.text
    assert NUL not in draft.text and "99999" not in draft.text
    assert _count(world, AssignmentDraft) == 0 and _count(world, Submission) == 0


def test_a_nul_in_a_submitted_text_a_skip_or_a_review_is_a_422(world) -> None:
    handle = world.annotators[0]
    task_id = world.open_tasks(handle)[0]
    with world.http(world.experts[handle]) as http:
        http.get(f"/api/expert/assignments/{task_id}")
        answer = http.post(
            f"/api/expert/assignments/{task_id}/submission",
            json={"answer": {**GOOD, "rationale": GOOD["rationale"] + NUL}},
        )
        skip = http.post(f"/api/expert/assignments/{task_id}/skip", json={"reason": f"conflict{NUL}"})
        assert http.post(f"/api/expert/assignments/{task_id}/submission", json={"answer": GOOD}).status_code == 201
    with world.http(world.experts[world.reviewer]) as http:
        review = http.post("/api/expert/reviews/next").json()
        path = f"/api/expert/reviews/{review['assignment_id']}/decision"
        reject = http.post(path, json={"decision": "reject", "reason": f"copied{NUL}"})
        correct = http.post(path, json={"decision": "correct", "corrected_answer": {**GOOD, "rationale": NUL * 50}})
    assert [answer.status_code, skip.status_code, reject.status_code, correct.status_code] == [422, 422, 422, 422]
    assert _count(world, Review) == 0


def test_a_body_past_the_limit_is_413(world) -> None:
    handle = world.annotators[0]
    task_id = world.open_tasks(handle)[0]
    huge = json.dumps({"answer": {"rationale": "x" * (2 * 1024 * 1024)}}).encode()
    with world.http(world.experts[handle]) as http:
        assert _raw(http, "PUT", f"/api/expert/assignments/{task_id}/draft", huge).status_code == 413


@contextmanager
def _signed_in(world, handle: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=world.url, timeout=30, follow_redirects=False) as http:
        assert http.post("/signin", data={"token": world.experts[handle]}).status_code == 303
        yield http


def test_the_pages_answer_hostile_form_values_with_a_form_not_a_500(world) -> None:
    handle = world.annotators[0]
    task_id = world.open_tasks(handle)[0]
    with _signed_in(world, handle) as http:
        http.get(f"/work/{task_id}")
        digits = http.post(f"/work/{task_id}", data={**GOOD, "rating": "9" * 5000, "action": "submit"})
        superscript = http.post(f"/work/{task_id}", data={**GOOD, "rating": "²", "action": "submit"})
        nul = http.post(f"/work/{task_id}", data={**GOOD, "rating": "5", "rationale": NUL * 60, "action": "draft"})
        skip = http.post(f"/work/{task_id}", data={"skip_reason": NUL, "action": "skip"})
    assert [digits.status_code, superscript.status_code, nul.status_code, skip.status_code] == [422, 422, 422, 422]
    assert "whole number" in digits.text
    assert _count(world, Submission) == 0 and _count(world, AssignmentDraft) == 0


# Pieces of hostile JSON: generated bodies are glued from these and arbitrary text.
_json_pieces = st.sampled_from(
    [
        b"{",
        b"}",
        b"[",
        b"]",
        b'"',
        b":",
        b",",
        b"NaN",
        b"-Infinity",
        b"1e999",
        b"9" * 4500,
        b"\\u0000",
        b"\\ud800",
        b'"answer"',
        b'"rating"',
        b'"rationale"',
        b'{"answer": {',
        b"[" * 200,
        b"null",
        b"\xff",
    ]
)
hostile_json = st.lists(st.one_of(_json_pieces, st.binary(max_size=5)), max_size=20).map(b"".join)
form_value = st.one_of(
    st.text(max_size=30), st.sampled_from(["9" * 5000, NUL, "²", "-0", "1e3", " 5 ", "reasoning_flaw"])
)
form = st.dictionaries(
    st.sampled_from(
        [
            "rating",
            "error_tags",
            "rationale",
            "improved_prompt",
            "action",
            "skip_reason",
            "decision",
            "reason",
            "corrected.rating",
            "corrected.rationale",
            "token",
        ]
    ),
    form_value,
    max_size=8,
)


def test_generated_drafts_and_form_posts_never_get_a_server_error(world) -> None:
    handle = world.annotators[0]
    task_id = world.open_tasks(handle)[0]
    failures: list[str] = []
    with (
        world.http(world.experts[handle]) as api,
        _signed_in(world, handle) as pages,
        _signed_in(world, world.reviewer) as reviewer,
    ):
        review_id = reviewer.get("/review").headers.get("location", "/review/1").rsplit("/", 1)[-1]

        @given(body=hostile_json, data=form)
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(body: bytes, data: dict[str, str]) -> None:
            for response in (
                _raw(api, "PUT", f"/api/expert/assignments/{task_id}/draft", body),
                _raw(api, "POST", f"/api/expert/assignments/{task_id}/skip", body),
                pages.post(f"/work/{task_id}", data={**data, "action": data.get("action", "draft")}),
                reviewer.post(f"/review/{review_id}", data=data),
                pages.post("/signin", data=data),
            ):
                if response.status_code >= 500:
                    failures.append(f"{response.request.method} {response.request.url.path}: {response.status_code}")

        check()
    assert not failures, failures[:5]


def test_a_hostile_chat_draft_renders_as_text_not_a_500() -> None:
    from app.pages import chat_turns

    for saved in (5, "turns", {"turns": 5}, {"turns": "x"}, {"turns": [{"run": [1]}, {"run": {"a": 1}}, 7]}):
        assert chat_turns(None, "talk", saved) == []
    [turn] = chat_turns(None, "talk", {"turns": [{"run": 3, "message": {"x": 1}, "marks": "unsafe", "note": 9}]})
    assert turn == {"run_id": 3, "message": "{'x': 1}", "reply": "", "rating": None, "marks": [], "note": "9"}
