"""Work in flight keeps its batch's spec version: a spec change mid-batch changes how new batches'
answers are checked, never how the answers of a batch already out are."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from expectations.submissions import check_submissions
from nightshift.dispatch.assignments import dispatch_batch
from nightshift.platform.db import transaction
from nightshift.platform.models import Assignment, Item
from nightshift.projects.registry import apply_spec, batch_body, project_body
from nightshift.projects.spec import parse_spec
from nightshift.review import gates
from nightshift.work import answers
from nightshift.work.access import AnswerInvalid
from nightshift.work.submissions import start_assignments
from tests.nightshift.review.test_quality import _items

NOW = dt.datetime.now(dt.UTC)
# Valid under the sample spec (v1): a rating of 7 on its 1-7 scale, and no "risk" label (v2's).
ANSWER = {
    "rating": 7,
    "error_tags": [],
    "rationale": "The answer reads the covenant terms right and weighs the liquidity effect with care.",
    "improved_prompt": "State the covenant terms of the facility and ask for the effect on liquidity over the "
    "next four quarters, quarter by quarter.",
}


def _open_task(sessions, batch_id: int) -> tuple[int, int]:
    """Dispatch the batch; one of its open annotations (assignment, expert), opened ten minutes ago."""
    with transaction(sessions) as session:
        dispatch_batch(session, batch_id, NOW)
        assignment_id, expert_id = session.execute(
            select(Assignment.id, Assignment.expert_id)
            .join(Item, Item.id == Assignment.item_id)
            .where(Item.batch_id == batch_id, Assignment.status == "assigned", Item.is_gold.is_(False))
            .order_by(Assignment.id)
            .limit(1)
        ).one()
        start_assignments(session, {assignment_id: NOW - dt.timedelta(minutes=10)})
    return assignment_id, expert_id


def test_a_spec_change_mid_batch_leaves_the_batch_in_flight_on_its_version(sessions, project, tmp_path) -> None:
    first = _items(sessions, tmp_path, n=3)
    data = project.model_dump(mode="json")
    # Version 2: a narrower scale and a new required label.
    [rating] = [label for label in data["project"]["labels"] if label["name"] == "rating"]
    rating["max"] = 5
    data["project"]["labels"].append({"name": "risk", "type": "single_choice", "options": ["low", "high"]})
    with transaction(sessions) as session:
        assert apply_spec(session, parse_spec(data)).spec_version == 2
    (tmp_path / "second").mkdir()
    second = _items(sessions, tmp_path / "second", n=4)

    # The batch out before the change: its experts answer as they were asked to.
    task, expert = _open_task(sessions, first)
    with transaction(sessions) as session:
        answers.submit_answer(session, expert, task, ANSWER, NOW)
    # The batch after it: the same answer is refused under version 2, with both reasons.
    task, expert = _open_task(sessions, second)
    with pytest.raises(AnswerInvalid) as refused, transaction(sessions) as session:
        answers.submit_answer(session, expert, task, ANSWER, NOW)
    assert set(refused.value.errors) == {"rating", "risk"}

    # The submissions gate judges each batch under its own version too.
    with sessions() as session:
        assert [label.name for label in batch_body(session, first).labels] == [
            label.name for label in project.project.labels
        ]
        assert "risk" in {label.name for label in project_body(session, 1).labels}
        rows = gates.submissions_to_gate(session, first)
        outcome = check_submissions(rows, batch_body(session, first))
    assert len(rows) == 1 and outcome.success
