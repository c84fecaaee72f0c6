from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from nightshift.db import transaction
from nightshift.dispatch import dispatch_items, expire_overdue, hours_until_window, items_to_staff
from nightshift.experts import ExpertRow, import_experts
from nightshift.models import Assignment, Expert, ExpertLanguage, ExpertSkill, Item, utcnow
from tests.conftest import SAMPLES
from tests.nightshift.test_ingest import good_row, ingest_file

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)


def dispatch_all(sessions, batch_id: int, now: dt.datetime = NOW):
    with transaction(sessions) as session:
        return dispatch_items(session, batch_id, items_to_staff(session, batch_id), now)


def test_each_item_gets_n_distinct_qualified_experts_within_capacity(sessions, project) -> None:
    batch_id, _ = ingest_file(sessions, SAMPLES / "items.jsonl")
    report = dispatch_all(sessions, batch_id)
    assert report.assignments == 240 * 3 and not report.unassignable
    with sessions() as session:
        per_item = session.execute(
            select(Assignment.item_id, func.count(), func.count(func.distinct(Assignment.expert_id))).group_by(
                Assignment.item_id
            )
        ).all()
        assert {(n, d) for _, n, d in per_item} == {(3, 3)}
        over_capacity = session.execute(
            select(Expert.id)
            .join(Assignment, Assignment.expert_id == Expert.id)
            .group_by(Expert.id, Expert.capacity)
            .having(func.count() > Expert.capacity)
        ).all()
        assert over_capacity == []
        unqualified = session.execute(
            select(Assignment.id)
            .join(Item, Item.id == Assignment.item_id)
            .where(
                ~select(ExpertSkill.expert_id)
                .where(ExpertSkill.expert_id == Assignment.expert_id, ExpertSkill.skill == "finance")
                .exists()
                | ~select(ExpertLanguage.expert_id)
                .where(ExpertLanguage.expert_id == Assignment.expert_id, ExpertLanguage.language == Item.language)
                .exists()
            )
        ).all()
        assert unqualified == []
    # A second dispatch finds nothing to do.
    assert dispatch_all(sessions, batch_id).assignments == 0


def test_load_is_spread_evenly_among_equally_qualified_experts(sessions, project) -> None:
    batch_id, _ = ingest_file(sessions, SAMPLES / "items.jsonl")
    dispatch_all(sessions, batch_id)
    with sessions() as session:
        load = dict(
            session.execute(select(Assignment.expert_id, func.count()).group_by(Assignment.expert_id)).tuples().all()
        )
        experts = session.execute(
            select(Expert.id, Expert.capacity)
            .join(ExpertSkill, ExpertSkill.expert_id == Expert.id)
            .where(ExpertSkill.skill == "finance")
        ).all()
        spoken = session.execute(select(ExpertLanguage.expert_id, ExpertLanguage.language)).all()
    languages: dict[int, set[str]] = {}
    for expert_id, language in spoken:
        languages.setdefault(expert_id, set()).add(language)
    groups: dict[frozenset[str], list[float]] = {}
    for expert_id, capacity in experts:
        groups.setdefault(frozenset(languages[expert_id]), []).append(load.get(expert_id, 0) / capacity)
    spreads = [max(r) - min(r) for r in groups.values() if len(r) > 1]
    assert spreads
    # Within a group of experts who can take exactly the same items, relative load differs by at
    # most one assignment (1/20 of the smallest capacity).
    assert max(spreads) <= 0.051, groups


def test_the_database_refuses_a_second_assignment_of_the_same_expert_and_role(sessions, project) -> None:
    batch_id, _ = ingest_file(sessions, SAMPLES / "items.jsonl")
    dispatch_all(sessions, batch_id)
    with sessions() as session:
        existing = session.scalars(select(Assignment).limit(1)).one()
        session.add(
            Assignment(item_id=existing.item_id, expert_id=existing.expert_id, role="annotate", due_at=utcnow())
        )
        with pytest.raises(IntegrityError):
            session.flush()


def test_items_nobody_can_take_are_listed_with_the_reason(sessions, project, tmp_path) -> None:
    path = tmp_path / "ja.jsonl"
    path.write_text(json.dumps(good_row("ja-1", language="ja")) + "\n")
    batch_id, _ = ingest_file(sessions, path)
    with transaction(sessions) as session:
        session.execute(
            update(Expert)
            .where(Expert.id.in_(select(ExpertLanguage.expert_id).where(ExpertLanguage.language == "ja")))
            .values(status="paused")
        )
    report = dispatch_all(sessions, batch_id)
    assert list(report.unassignable.values()) == ["no active expert with skills ['finance'] and language 'ja'"]
    with sessions() as session:
        item = session.scalars(select(Item)).one()
    assert (item.status, item.status_reason) == ("unassignable", report.unassignable[item.id])


def _one_expert(handle: str, capacity: int = 5) -> ExpertRow:
    return ExpertRow.model_validate(
        {
            "handle": handle,
            "name": handle,
            "email": f"{handle}@x.example",
            "timezone": "Europe/Berlin",
            "work_start_hour": 20,
            "work_hours": 3,
            "hourly_rate": "120.00",
            "tier": "annotator",
            "capacity": capacity,
            "skills": ["finance"],
            "languages": ["fr"],
        }
    )


def test_a_pool_of_one_qualified_expert_staffs_one_slot_and_says_why(sessions, project, tmp_path) -> None:
    path = tmp_path / "fr.jsonl"
    path.write_text(json.dumps(good_row("fr-1", language="fr")) + "\n")
    batch_id, _ = ingest_file(sessions, path)
    with transaction(sessions) as session:
        session.execute(update(Expert).values(status="paused"))
        import_experts(session, [_one_expert("solo")])
    report = dispatch_all(sessions, batch_id)
    assert report.assignments == 1
    with sessions() as session:
        assert session.scalars(select(Item.status)).one() == "assigned"


def test_expired_work_is_reassigned_never_to_the_same_expert(sessions, project) -> None:
    batch_id, _ = ingest_file(sessions, SAMPLES / "items.jsonl")
    dispatch_all(sessions, batch_id)
    with sessions() as session:
        first = {(a.item_id, a.expert_id) for a in session.scalars(select(Assignment))}
    later = NOW + dt.timedelta(hours=25)
    with transaction(sessions) as session:
        assert expire_overdue(session, later) == 720
    dispatch_all(sessions, batch_id, later)
    with sessions() as session:
        fresh = {
            (a.item_id, a.expert_id) for a in session.scalars(select(Assignment).where(Assignment.status == "assigned"))
        }
    assert len(fresh) == 720
    assert not fresh & first


@pytest.mark.parametrize(
    ("utc_hour", "zone", "start", "hours", "expected"),
    [
        (19, "Europe/Berlin", 20, 3, 0.0),  # 20:00 in Berlin: window open
        (12, "Europe/Berlin", 20, 3, 7.0),  # 13:00 in Berlin: opens in 7 h
        (23, "Europe/Berlin", 22, 3, 0.0),  # 00:00 in Berlin: yesterday's window still open
        (3, "America/New_York", 18, 2, 20.0),  # 22:00 in New York: window over, opens at 18:00 tomorrow
    ],
)
def test_hours_until_the_working_window_follow_each_experts_time_zone(utc_hour, zone, start, hours, expected):
    now = dt.datetime(2026, 11, 24, utc_hour, 0, tzinfo=dt.UTC)
    assert hours_until_window(now, zone, start, hours) == pytest.approx(expected)
