"""The review's verdicts: written once, by the assignments' own key, and on PostgreSQL in place."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import select, text

from expectations.agreement import check_agreement
from expectations.submissions import check_submissions
from nightshift.platform.db import transaction
from nightshift.platform.models import Assignment, Batch
from nightshift.projects.registry import project_spec
from nightshift.review import gates, settle
from nightshift.work.submissions import answers_of
from tests.conftest import SAMPLES
from tests.flows.test_review_flow import _answer_open_work
from tests.nightshift.ingest.test_ingest import ingest_file


def _gated_batch(sessions) -> tuple[int, list[dict], gates.GateOutcome]:
    batch_id, _ = ingest_file(sessions, SAMPLES / "items.jsonl")
    _answer_open_work(sessions, batch_id, lambda expert, item, gold: gold["rating"] if gold else 5)
    with sessions() as session:
        rows = gates.submissions_to_gate(session, batch_id)
        spec = project_spec(session, session.get_one(Batch, batch_id).project_id).project
    return batch_id, rows, check_submissions(rows, spec)


@contextmanager
def _updates_counted(session, table: str) -> Iterator[list[int]]:
    """Yields a list that holds, once the block ends, [rows updated, of them in place (HOT)] in
    the table by this backend inside the block."""
    # This backend's counts not yet flushed (earlier transactions' too, on PostgreSQL 15): a delta.
    counts = text(
        "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables"
        " WHERE relname = :table AND schemaname = current_schema()"
    )
    before = session.execute(counts, {"table": table}).one()
    counted: list[int] = []
    yield counted
    after = session.execute(counts, {"table": table}).one()
    counted.extend([after[0] - before[0], after[1] - before[1]])


def _vacuumed(sessions, table: str) -> None:
    """Clears the table's dead row versions, so its pages have the room their fill factor keeps."""
    # Pruning on the way is not enough under load: a backend re-reads the horizon only when the
    # oldest transaction of the whole server moves, so a long transaction in any other database
    # (another test's) can leave the earlier updates unpruned and the pages full.
    with sessions().get_bind().connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(f"VACUUM {table}")


def _skip_unless_postgres(sessions) -> None:
    with sessions() as session:
        if session.get_bind().dialect.name != "postgresql":
            pytest.skip("HOT updates are PostgreSQL's")


def test_verdicts_go_to_the_rows_the_gate_read_and_still_await_one(sessions, project) -> None:
    _, rows, outcome = _gated_batch(sessions)
    assert rows and outcome.success
    late = rows[0]["assignment_id"]
    with transaction(sessions) as session:
        # Settled elsewhere between the gate's read and its verdicts: the verdict must not overwrite it.
        session.get_one(Assignment, late).status = "rejected"
    with transaction(sessions) as session:
        assert gates.apply_submission_gate(session, outcome, rows) == 0
    with sessions() as session:
        statuses = dict(
            session.execute(
                select(Assignment.id, Assignment.status).where(Assignment.id.in_([r["assignment_id"] for r in rows]))
            ).all()
        )
    assert statuses.pop(late) == "rejected"
    assert set(statuses.values()) == {"accepted"}


def test_accepting_a_batch_updates_every_annotation_in_place_on_postgresql(sessions, project) -> None:
    # No index names the status and pages keep room (models.Assignment): the verdicts are HOT
    # updates, which write no index entry. With status back in any index, none would be; a page
    # that the experts' own writes (start, submit) left full can push out a few.
    _skip_unless_postgres(sessions)
    _, rows, outcome = _gated_batch(sessions)
    _vacuumed(sessions, "assignments")
    with transaction(sessions) as session, _updates_counted(session, "assignments") as counted:
        gates.apply_submission_gate(session, outcome, rows)
    updated, in_place = counted
    assert updated == len(rows) > 500
    assert in_place >= 0.9 * updated


def test_passing_a_batch_updates_its_items_in_place_on_postgresql(sessions, project) -> None:
    # Items are indexed by batch, not by status, and pages keep room (models.Item): a stage moving
    # a batch's items on writes no index entry. With status back in any index, none would be HOT.
    _skip_unless_postgres(sessions)
    batch_id, rows, outcome = _gated_batch(sessions)
    with transaction(sessions) as session:
        gates.apply_submission_gate(session, outcome, rows)
    _vacuumed(sessions, "items")
    report = settle.ReviewReport()
    with transaction(sessions) as session, _updates_counted(session, "items") as counted:
        settle.aggregate_ready_items(session, batch_id, report, check_agreement)
    updated, in_place = counted
    assert updated == report.passed_items > 100
    assert in_place >= 0.9 * updated


def test_answers_in_hand_are_used_and_only_the_others_are_read(sessions, project) -> None:
    _, rows, _ = _gated_batch(sessions)
    first, second = rows[0]["submission_id"], rows[1]["submission_id"]
    in_hand = {"rating": -1}  # not what the database holds: proves it came from memory
    with sessions() as session:
        answers = answers_of(session, [first, second], {first: in_hand})
    assert answers[first] is in_hand
    assert answers[second] == rows[1]["answer"]
