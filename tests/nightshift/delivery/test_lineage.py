"""A delivered record's lineage shows its reviewers' decisions (by alias, what, on which annotation,
when) beside the gate's, and is the same text whichever path built it."""

from __future__ import annotations

import datetime as dt

import orjson
from sqlalchemy import select

from nightshift.delivery import records as delivery_records
from nightshift.platform.db import transaction
from nightshift.platform.models import Batch, Expert, Project, Submission
from nightshift.review.decisions import decide_review
from tests.nightshift.review.test_review_policy import NOW, _annotation_under, _answered_and_under_review, _gate_round


def test_a_records_lineage_shows_a_reviewers_correction(sessions, project) -> None:
    batch_id, reviewer, review = _answered_and_under_review(sessions)
    annotation, item_id = _annotation_under(sessions, review)
    with transaction(sessions) as session:
        submission = session.scalars(select(Submission).where(Submission.assignment_id == annotation)).one()
        corrected = dict(submission.answer) | {"rating": 2}
        decide_review(session, reviewer, review, "correct", "the answer misses the covenant", corrected, NOW)
    assert _gate_round(sessions, batch_id)[1] == "passed"

    with sessions() as session:
        records = [r for chunk in delivery_records.iter_records(session, batch_id) for r in chunk]
        client_id = session.scalar(
            select(Project.client_id).join(Batch, Batch.project_id == Project.id).where(Batch.id == batch_id)
        )
        handle = session.get_one(Expert, reviewer).handle
    [record] = [r for r in records if r.item_id == item_id]
    lineage = orjson.loads(record.lineage_json)
    [shown] = lineage["reviews"]
    assert shown["reviewer"] == delivery_records.pseudonym(client_id, reviewer) != handle
    assert (shown["decision"], shown["submission"]) == ("correct", submission.id)
    at = dt.datetime.strptime(shown["at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    assert abs(at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    assert all(r.item_id == item_id or orjson.loads(r.lineage_json)["reviews"] == [] for r in records)
    assert lineage["responses"] == []
    assert handle not in record.lineage_json

    with sessions() as session:
        if session.get_bind().dialect.name == "postgresql":
            in_sql = [r for c in delivery_records.iter_records_in_sql(session, batch_id, chunk_rows=7) for r in c]
            in_python = [r for c in delivery_records.iter_records_in_python(session, batch_id, chunk_rows=7) for r in c]
            assert in_sql == in_python
