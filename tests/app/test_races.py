"""Two requests on one task at the same instant, on PostgreSQL, round after round: exactly one wins,
the other is told 409, and no answer is lost or left orphaned (a submission on a skipped task, a
draft on a closed one, two reviews of one decision)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from nightshift.platform.db import transaction
from nightshift.platform.keys import issue_key
from nightshift.platform.models import (
    Assignment,
    AssignmentDraft,
    Expert,
    ExpertSkill,
    Item,
    Review,
    Submission,
    utcnow,
)
from nightshift.work.submissions import NewSubmission, record_submissions, start_assignments
from tests.app.conftest import _items
from tests.app.test_expert_api import GOOD
from tests.nightshift.ingest.test_ingest import ingest_file

ROUNDS = 25
# Races are a PostgreSQL matter: SQLite runs one writer at a time.
pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


@pytest.fixture
def race(world, tmp_path):
    batch_id, _ = ingest_file(world.sessions, _items(tmp_path / "race.jsonl", "race", ROUNDS * 4))
    with world.sessions() as session:
        items = list(session.scalars(select(Item.id).where(Item.batch_id == batch_id).order_by(Item.id)))
    return world, items


def _expert_id(world, handle: str) -> int:
    with world.sessions() as session:
        return session.scalars(select(Expert.id).where(Expert.handle == handle)).one()


def _open_tasks(world, expert_id: int, items: list[int]) -> list[int]:
    """An open, already opened annotation task for the expert on each item."""
    due = utcnow() + dt.timedelta(hours=4)
    with transaction(world.sessions) as session:
        ids = []
        for item_id in items:
            task = Assignment(item_id=item_id, expert_id=expert_id, role="annotate", status="assigned", due_at=due)
            session.add(task)
            session.flush()
            ids.append(task.id)
        start_assignments(session, {task_id: utcnow() - dt.timedelta(minutes=5) for task_id in ids})
        session.execute(Item.__table__.update().where(Item.id.in_(items)).values(status="assigned"))
    return ids


def _at_once(*requests: Callable[[], httpx.Response]) -> list[int]:
    """Fire the requests from threads released together; their status codes, in order."""
    gate = threading.Barrier(len(requests))

    def fire(request: Callable[[], httpx.Response]) -> int:
        gate.wait()
        return request().status_code

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(fire, requests))


def _count(world, query) -> int:
    with world.sessions() as session:
        return int(session.scalar(query) or 0)


def test_skip_against_submit_has_one_winner_and_no_orphaned_answer(race) -> None:
    world, items = race
    handle = world.annotators[0]
    tasks = _open_tasks(world, _expert_id(world, handle), items[:ROUNDS])
    outcomes = []
    with world.http(world.experts[handle]) as a, world.http(world.experts[handle]) as b:
        for task in tasks:
            outcomes.append(
                _at_once(
                    lambda t=task: a.post(f"/api/expert/assignments/{t}/skip", json={"reason": "conflict"}),
                    lambda t=task: b.post(f"/api/expert/assignments/{t}/submission", json={"answer": GOOD}),
                )
            )
    assert all(sorted(o) in ([201, 409], [204, 409]) for o in outcomes), outcomes
    orphaned = (
        select(func.count())
        .select_from(Submission)
        .join(Assignment, Assignment.id == Submission.assignment_id)
        .where(Assignment.status != "submitted", Assignment.id.in_(tasks))
    )
    assert _count(world, orphaned) == 0
    submitted = (
        select(func.count()).select_from(Assignment).where(Assignment.id.in_(tasks), Assignment.status == "submitted")
    )
    assert _count(world, submitted) == sum(1 for o in outcomes if o[1] == 201)


def test_draft_against_submit_never_leaves_a_draft_on_a_closed_task(race) -> None:
    world, items = race
    handle = world.annotators[0]
    tasks = _open_tasks(world, _expert_id(world, handle), items[:ROUNDS])
    outcomes = []
    with world.http(world.experts[handle]) as a, world.http(world.experts[handle]) as b:
        for task in tasks:
            outcomes.append(
                _at_once(
                    lambda t=task: a.put(f"/api/expert/assignments/{t}/draft", json={"answer": {"rating": 3}}),
                    lambda t=task: b.post(f"/api/expert/assignments/{t}/submission", json={"answer": GOOD}),
                )
            )
    assert all(o[1] == 201 and o[0] in (204, 409) for o in outcomes), outcomes
    assert _count(world, select(func.count()).select_from(AssignmentDraft)) == 0


def _submitted_annotations(world, items: list[int]) -> list[int]:
    """One submitted annotation on each item, awaiting review."""
    tasks = _open_tasks(world, _expert_id(world, world.annotators[0]), items)
    with transaction(world.sessions) as session:
        record_submissions(session, [NewSubmission(t, GOOD) for t in tasks])
    return tasks


def _second_reviewer(world) -> str:
    with transaction(world.sessions) as session:
        busy = select(Assignment.expert_id)
        expert = session.execute(
            select(Expert.handle, Expert.id)
            .join(ExpertSkill, ExpertSkill.expert_id == Expert.id)
            .where(
                Expert.tier == "reviewer",
                Expert.handle != world.reviewer,
                ExpertSkill.skill == "finance",
                Expert.id.not_in(busy),
            )
            .limit(1)
        ).one()
        world.experts[expert.handle] = issue_key(session, "expert", expert.id).key
    return expert.handle


def test_two_claims_of_one_review_give_it_to_one_reviewer(race) -> None:
    world, items = race
    other = _second_reviewer(world)
    claims = []
    with world.http(world.experts[world.reviewer]) as a, world.http(world.experts[other]) as b:
        for item in items[:ROUNDS]:
            _submitted_annotations(world, [item])
            codes = _at_once(lambda: a.post("/api/expert/reviews/next"), lambda: b.post("/api/expert/reviews/next"))
            claims.append(codes)
            # Each decides what they got, so the next round starts with nothing open.
            for http in (a, b):
                for task in http.get("/api/expert/assignments", params={"role": "review"}).json():
                    http.post(f"/api/expert/reviews/{task['assignment_id']}/decision", json={"decision": "approve"})
    assert all(sorted(c) == [200, 204] for c in claims), claims
    assert _count(world, select(func.count()).select_from(Review)) == ROUNDS


def test_one_reviewer_claiming_twice_at_once_holds_one_review(race) -> None:
    world, items = race
    _submitted_annotations(world, items[:ROUNDS])
    with world.http(world.experts[world.reviewer]) as a, world.http(world.experts[world.reviewer]) as b:
        for _ in range(ROUNDS // 2):
            codes = _at_once(lambda: a.post("/api/expert/reviews/next"), lambda: b.post("/api/expert/reviews/next"))
            assert codes == [200, 200]
            open_reviews = a.get("/api/expert/assignments", params={"role": "review"}).json()
            assert len(open_reviews) == 1
            a.post(f"/api/expert/reviews/{open_reviews[0]['assignment_id']}/decision", json={"decision": "approve"})


def test_two_decisions_on_one_review_record_one(race) -> None:
    world, items = race
    annotations = _submitted_annotations(world, items[:ROUNDS])
    outcomes = []
    with world.http(world.experts[world.reviewer]) as a, world.http(world.experts[world.reviewer]) as b:
        for _ in annotations:
            review = a.post("/api/expert/reviews/next").json()["assignment_id"]
            path = f"/api/expert/reviews/{review}/decision"
            outcomes.append(
                _at_once(
                    lambda p=path: a.post(p, json={"decision": "approve"}),
                    lambda p=path: b.post(p, json={"decision": "reject", "reason": "misreads the context"}),
                )
            )
    assert all(sorted(o) == [204, 409] for o in outcomes), outcomes
    assert _count(world, select(func.count()).select_from(Review)) == ROUNDS
    rejected = (
        select(func.count())
        .select_from(Assignment)
        .where(Assignment.id.in_(annotations), Assignment.status == "rejected")
    )
    assert _count(world, rejected) == sum(1 for o in outcomes if o[1] == 204)
