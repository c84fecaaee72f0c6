"""The expert API over HTTP: tasks, drafts, submissions checked against the label schema, skips, reviews."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import event, func, select

from nightshift.dispatch.assignments import dispatch_batch
from nightshift.platform.db import transaction
from nightshift.platform.models import Assignment, AssignmentDraft, Item, Review, Submission, utcnow

GOOD = {
    "rating": 5,
    "error_tags": ["reasoning_flaw"],
    "rationale": "The answer ignores the covenant limits stated in the context, so the plan fails.",
    "improved_prompt": "Given the covenant limits in the context, recommend whether to proceed and show the numbers "
    "that drive the decision.",
}


def _count(world, model) -> int:
    with world.sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_next_task_shows_instructions_form_and_item_and_starts_the_clock(world) -> None:
    handle = world.annotators[0]
    with world.http(world.experts[handle]) as http:
        task = http.get("/api/expert/assignments/next").json()
    assert task["assignment_id"] == world.open_tasks(handle)[0]
    assert task["role"] == "annotate" and task["project"] == "acme-scenarios"
    assert "Rate the answer" in task["instructions"]
    assert [label["name"] for label in task["labels"]] == ["rating", "error_tags", "rationale", "improved_prompt"]
    # The client's fields and nothing of ours: no gold flag, no other annotator.
    item = task["item"]
    assert item["external_id"].startswith("a-") and item["prompt"] and item["model_answer"]
    assert set(item) <= {"external_id", "prompt", "model_answer", "context", "language", "domain"}
    assert task["language"] == "en" and task["started_at"] is not None


def test_a_bad_answer_gets_422_naming_each_field_and_nothing_is_stored(world) -> None:
    handle = world.annotators[0]
    task_id = world.open_tasks(handle)[0]
    bad = {**GOOD, "rating": 9, "rationale": "short", "mood": "happy"}
    del bad["improved_prompt"]
    with world.http(world.experts[handle]) as http:
        http.get(f"/api/expert/assignments/{task_id}")
        sent = http.post(f"/api/expert/assignments/{task_id}/submission", json={"answer": bad})
        not_an_object = http.post(f"/api/expert/assignments/{task_id}/submission", json={"answer": [1, 2]})
    assert sent.status_code == 422
    reasons = {tuple(d["loc"]): d["msg"] for d in sent.json()["detail"]}
    assert reasons == {
        ("body", "answer", "rating"): "must be a whole number from 1 to 7",
        ("body", "answer", "rationale"): "must be 40 to 20000 characters",
        ("body", "answer", "improved_prompt"): "required",
        ("body", "answer", "mood"): "not a field of this project's label schema",
    }
    assert not_an_object.status_code == 422
    assert _count(world, Submission) == 0
    assert task_id in world.open_tasks(handle)


def test_a_good_answer_is_stored_once_with_server_time_on_task(world) -> None:
    handle = world.annotators[0]
    task_id = world.open_tasks(handle)[0]
    with world.http(world.experts[handle]) as http:
        http.get(f"/api/expert/assignments/{task_id}")
        first = http.post(f"/api/expert/assignments/{task_id}/submission", json={"answer": GOOD})
        again = http.post(f"/api/expert/assignments/{task_id}/submission", json={"answer": GOOD})
    assert first.status_code == 201 and again.status_code == 409
    with world.sessions() as session:
        stored = session.scalars(select(Submission)).one()
        assignment = session.get(Assignment, task_id)
    assert stored.id == first.json()["submission_id"] and stored.answer == GOOD
    assert assignment.status == "submitted" and assignment.worked_seconds is not None


def test_racing_submissions_of_one_task_store_one_answer_and_the_rest_get_409(world) -> None:
    # All of them read the task as open; the write's own WHERE decides, in the database.
    handle = world.annotators[0]
    task_id = world.open_tasks(handle)[0]
    with world.http(world.experts[handle]) as http:
        http.get(f"/api/expert/assignments/{task_id}")
        path = f"/api/expert/assignments/{task_id}/submission"
        with ThreadPoolExecutor(12) as pool:
            codes = sorted(pool.map(lambda _: http.post(path, json={"answer": GOOD}).status_code, range(12)))
    assert codes == [201] + [409] * 11
    assert _count(world, Submission) == 1


def test_under_load_the_service_holds_no_more_connections_than_its_pool(world) -> None:
    # A route holds a pooled connection in a thread of the thread pool: with more threads than
    # connections, the pool lent overflow connections, opened and closed for each request.
    engine = world.resources.engine
    opened = []
    event.listen(engine, "connect", lambda *_: opened.append(1))
    before = engine.pool.checkedin() + engine.pool.checkedout()
    handle = world.annotators[0]
    with world.http(world.experts[handle]) as http, ThreadPoolExecutor(60) as pool:
        codes = set(pool.map(lambda _: http.get("/api/expert/assignments").status_code, range(300)))
    assert codes == {200}
    assert before + len(opened) <= engine.pool.size()


def test_a_draft_is_kept_and_shown_again_and_cleared_by_submitting(world) -> None:
    handle = world.annotators[0]
    task_id = world.open_tasks(handle)[0]
    with world.http(world.experts[handle]) as http:
        assert http.put(f"/api/expert/assignments/{task_id}/draft", json={"answer": {"rating": 3}}).status_code == 204
        assert http.get(f"/api/expert/assignments/{task_id}").json()["draft"] == {"rating": 3}
        unknown = http.put(f"/api/expert/assignments/{task_id}/draft", json={"answer": {"nope": 1}})
        assert unknown.status_code == 422
        http.post(f"/api/expert/assignments/{task_id}/submission", json={"answer": GOOD})
    assert _count(world, AssignmentDraft) == 0


def test_a_skip_needs_a_reason_and_sends_the_item_to_someone_else(world) -> None:
    handle = world.annotators[0]
    task_id = world.open_tasks(handle)[0]
    with world.http(world.experts[handle]) as http:
        assert http.post(f"/api/expert/assignments/{task_id}/skip", json={"reason": ""}).status_code == 422
        assert (
            http.post(f"/api/expert/assignments/{task_id}/skip", json={"reason": "conflict of interest"}).status_code
            == 204
        )
        assert http.post(f"/api/expert/assignments/{task_id}/skip", json={"reason": "again"}).status_code == 409
    with world.sessions() as session:
        skipped = session.get(Assignment, task_id)
        item = session.get(Item, skipped.item_id)
    assert (skipped.status, skipped.status_reason, item.status) == ("skipped", "conflict of interest", "rework")


def test_a_reviewer_sees_a_pseudonym_and_a_rejection_sends_the_rework_to_another_expert(world, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    annotator = world.annotators[0]
    task_id = world.open_tasks(annotator)[0]
    with world.http(world.experts[annotator]) as http:
        http.get(f"/api/expert/assignments/{task_id}")
        http.post(f"/api/expert/assignments/{task_id}/submission", json={"answer": GOOD})
        # An annotator of the item is never its reviewer, and theirs is the only annotation waiting.
        assert http.post("/api/expert/reviews/next").status_code == 204
    with world.http(world.experts[world.reviewer]) as http:
        review = http.post("/api/expert/reviews/next").json()
        assert review["role"] == "review" and review["subject_answer"] == GOOD
        assert review["annotator"].startswith("ann_") and annotator not in str(review)
        same = http.post("/api/expert/reviews/next").json()
        assert same["assignment_id"] == review["assignment_id"]
        path = f"/api/expert/reviews/{review['assignment_id']}/decision"
        assert http.post(path, json={"decision": "reject"}).status_code == 422
        assert http.post(path, json={"decision": "reject", "reason": "ignores the context"}).status_code == 204
        assert http.post(path, json={"decision": "approve"}).status_code == 409
    with world.sessions() as session:
        annotation = session.get(Assignment, task_id)
        item_id = annotation.item_id
        assert annotation.status == "rejected" and "ignores the context" in annotation.status_reason
        assert session.get(Item, item_id).status == "rework"
        assert session.scalars(select(Review.decision)).all() == ["reject"]
    with transaction(world.sessions) as session:
        dispatch_batch(session, world.batches["acme"], utcnow())
    with world.sessions() as session:
        holders = session.execute(
            select(Assignment.expert_id, Assignment.status).where(
                Assignment.item_id == item_id, Assignment.role == "annotate"
            )
        ).all()
    assert len([h for h in holders if h.status == "assigned"]) >= 1
    assert annotation.expert_id not in {h.expert_id for h in holders if h.status == "assigned"}
    assert not any(token in caplog.text for token in world.experts.values())


def test_a_correction_must_fit_the_schema_and_stands_in_for_the_annotation(world) -> None:
    annotator = world.annotators[0]
    task_id = world.open_tasks(annotator)[0]
    with world.http(world.experts[annotator]) as http:
        http.post(f"/api/expert/assignments/{task_id}/submission", json={"answer": GOOD})
    with world.http(world.experts[world.reviewer]) as http:
        review = http.post("/api/expert/reviews/next").json()
        path = f"/api/expert/reviews/{review['assignment_id']}/decision"
        bad = http.post(path, json={"decision": "correct", "corrected_answer": {**GOOD, "rating": 0}})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "answer", "rating"]
        fixed = {**GOOD, "rating": 2}
        assert http.post(path, json={"decision": "correct", "corrected_answer": fixed}).status_code == 204
    from nightshift.review.settle import accepted_votes

    with transaction(world.sessions) as session:
        annotation = session.get(Assignment, task_id)
        annotation.status = "accepted"  # as the submissions gate would
        session.flush()
        votes = accepted_votes(session, [annotation.item_id])[annotation.item_id]
    # The correction stands in for the annotation, and counts as reviewer-approved.
    assert [(v.answer, v.approved) for v in votes] == [(fixed, True)]


def test_earnings_show_rate_and_the_hours_not_yet_paid(world) -> None:
    handle = world.annotators[0]
    with world.http(world.experts[handle]) as http:
        earned = http.get("/api/expert/earnings").json()
    assert float(earned["hourly_rate"]) >= 100
    assert float(earned["total"]) == 0
    assert earned["submitted_tasks"] == 0
