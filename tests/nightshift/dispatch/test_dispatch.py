from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from nightshift.dispatch.assignments import dispatch_batch, expire_overdue, write_assignments
from nightshift.dispatch.plan import DOUBT_GOLD, PlanShard, plan_dispatch, plan_in_shards
from nightshift.dispatch.pool import hours_until_window
from nightshift.experts.registry import ExpertRow, import_experts
from nightshift.experts.routing import refresh_routes
from nightshift.platform.db import transaction
from nightshift.platform.models import Assignment, Expert, ExpertLanguage, ExpertSkill, Item, utcnow
from nightshift.projects.registry import apply_spec
from tests.conftest import SAMPLES
from tests.nightshift.ingest.test_ingest import good_row, ingest_file

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)


def dispatch_all(sessions, batch_id: int, now: dt.datetime = NOW):
    with transaction(sessions) as session:
        return dispatch_batch(session, batch_id, now)


def test_each_item_gets_n_distinct_qualified_experts_within_capacity(sessions, project) -> None:
    batch_id, _ = ingest_file(sessions, SAMPLES / "items.jsonl")
    report = dispatch_all(sessions, batch_id)
    with sessions() as session:
        gold_items = session.scalar(select(func.count()).select_from(Item).where(Item.is_gold))
    # A gold item is settled by its known answer: one expert staffs it, the mix-in adds the checks.
    assert gold_items and report.assignments == (240 - gold_items) * 3 + gold_items + report.gold_assignments
    assert not report.unassignable
    with sessions() as session:
        per_item = session.execute(
            select(Item.is_gold, func.count(), func.count(func.distinct(Assignment.expert_id)))
            .join(Assignment, Assignment.item_id == Item.id)
            .group_by(Item.id, Item.is_gold)
        ).all()
        assert {(n, d) for gold, n, d in per_item if not gold} == {(3, 3)}
        # Gold items go to one expert and to those the mix-in picks, never twice to one.
        assert all(n == d >= 1 for gold, n, d in per_item if gold)
        gold_share = sum(n for gold, n, _ in per_item if gold) / sum(n for _, n, _ in per_item)
        # Near the gold rate: with a dozen gold items over five languages, some experts' routes run out.
        assert gold_share >= 0.9 * project.project.gold_rate
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
        load = dict(session.execute(select(Assignment.expert_id, func.count()).group_by(Assignment.expert_id)).all())
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
    # most two assignments (2/20 of the smallest capacity): one from the spread, one gold item.
    assert max(spreads) <= 0.101, groups


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


def _one_expert(handle: str, capacity: int = 5, **overrides) -> ExpertRow:
    values = {
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
    return ExpertRow.model_validate(values | overrides)


def _only_these_experts(sessions, *rows: ExpertRow, reliability: dict[str, float] | None = None) -> dict[str, int]:
    """Pause the sample pool and import these experts instead; handle -> id."""
    with transaction(sessions) as session:
        session.execute(update(Expert).values(status="paused"))
        import_experts(session, list(rows))
        ids = dict(session.execute(select(Expert.handle, Expert.id)).all())
        for handle, value in (reliability or {}).items():
            session.execute(update(Expert).where(Expert.id == ids[handle]).values(reliability=value))
        refresh_routes(session, [ids[r.handle] for r in rows])
    return {r.handle: ids[r.handle] for r in rows}


def _fr_items(sessions, tmp_path, n: int, **fields) -> int:
    path = tmp_path / f"fr-{n}.jsonl"
    path.write_text("".join(json.dumps(good_row(f"fr-{i}", language="fr", **fields)) + "\n" for i in range(n)))
    return ingest_file(sessions, path)[0]


def _holders(sessions) -> dict[int, set[int]]:
    with sessions() as session:
        held: dict[int, set[int]] = {}
        for item_id, expert_id in session.execute(select(Assignment.item_id, Assignment.expert_id)):
            held.setdefault(item_id, set()).add(expert_id)
    return held


def test_when_every_qualified_expert_is_at_capacity_items_wait_with_that_reason(sessions, project, tmp_path) -> None:
    ids = _only_these_experts(sessions, _one_expert("a", capacity=1), _one_expert("b", capacity=1))
    batch_id = _fr_items(sessions, tmp_path, 3)
    report = dispatch_all(sessions, batch_id)
    # Two slots in the pool: the first item gets both experts, the others nobody.
    assert report.assignments == 2
    assert set(report.unassignable.values()) == {
        "every qualified expert for language 'fr' is at capacity or already had this item"
    }
    assert set(_holders(sessions).popitem()[1]) == set(ids.values())


def test_an_expert_of_reviewer_tier_annotates_but_never_twice_on_one_item(sessions, project, tmp_path) -> None:
    _only_these_experts(sessions, _one_expert("both", capacity=10, tier="reviewer"))
    batch_id = _fr_items(sessions, tmp_path, 2)
    report = dispatch_all(sessions, batch_id)
    assert report.assignments == 2  # one per item: the same expert cannot fill a second slot
    assert all(len(experts) == 1 for experts in _holders(sessions).values())
    # Expired and re-dispatched, the item does not come back to the only expert who held it.
    with transaction(sessions) as session:
        expire_overdue(session, NOW + dt.timedelta(days=2))
    assert dispatch_all(sessions, batch_id, NOW + dt.timedelta(days=2)).assignments == 0


def test_the_item_skill_field_routes_each_item_to_experts_of_its_domain(
    sessions, project, tmp_path, sample_spec
) -> None:
    spec = sample_spec.model_copy(update={"project": sample_spec.project.model_copy(update={"skill_field": "domain"})})
    with transaction(sessions) as session:
        apply_spec(session, spec)
    ids = _only_these_experts(
        sessions,
        _one_expert("lawyer-1", skills=["finance", "law"]),
        _one_expert("lawyer-2", skills=["finance", "law"]),
        _one_expert("lawyer-3", skills=["finance", "law"]),
        _one_expert("banker-1"),
        _one_expert("banker-2"),
        _one_expert("banker-3"),
    )
    batch_id = _fr_items(sessions, tmp_path, 2, domain="law")
    assert dispatch_all(sessions, batch_id).assignments == 6
    lawyers = {ids[f"lawyer-{i}"] for i in (1, 2, 3)}
    assert all(experts == lawyers for experts in _holders(sessions).values())


def test_soonest_working_window_wins_among_equals_then_reliability(sessions, project, tmp_path) -> None:
    # NOW is 12:00 UTC. Tokyo's window (21:00 JST = 12:00 UTC) is open now; Berlin's opens at 19:00 UTC.
    ids = _only_these_experts(
        sessions,
        _one_expert("berlin", timezone="Europe/Berlin", work_start_hour=20),
        _one_expert("tokyo", timezone="Asia/Tokyo", work_start_hour=21),
        _one_expert("tokyo-less-reliable", timezone="Asia/Tokyo", work_start_hour=21),
        reliability={"berlin": 0.95, "tokyo": 0.9, "tokyo-less-reliable": 0.6},
    )
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(good_row("fr-one", language="fr")) + "\n")
    batch_id = ingest_file(sessions, path)[0]
    with transaction(sessions) as session:
        session.execute(update(Item).values(overlap_target=1))
    dispatch_all(sessions, batch_id)
    assert _holders(sessions).popitem()[1] == {ids["tokyo"]}


def test_full_experts_at_the_top_of_the_index_do_not_hide_the_rest(sessions, project, tmp_path) -> None:
    # 60 most reliable experts are full; dispatch must page past them to the ones with room.
    full = [_one_expert(f"full-{i:02d}", capacity=1) for i in range(60)]
    free = [_one_expert(f"free-{i}", capacity=5) for i in range(3)]
    ids = _only_these_experts(
        sessions, *full, *free, reliability={r.handle: 0.99 for r in full} | {r.handle: 0.5 for r in free}
    )
    first = _fr_items(sessions, tmp_path, 20)
    assert dispatch_all(sessions, first).assignments == 60  # fills the 60 full ones exactly
    path = tmp_path / "later.jsonl"
    path.write_text(json.dumps(good_row("fr-later", language="fr")) + "\n")
    later = ingest_file(sessions, path)[0]
    assert dispatch_all(sessions, later).assignments == 3
    with sessions() as session:
        took = set(
            session.scalars(
                select(Assignment.expert_id).join(Item, Item.id == Assignment.item_id).where(Item.batch_id == later)
            )
        )
    assert took == {ids[f"free-{i}"] for i in range(3)}


def test_a_dispatch_cut_short_and_run_again_ends_with_exactly_the_right_assignments(sessions, project) -> None:
    batch_id, _ = ingest_file(sessions, SAMPLES / "items.jsonl")
    with sessions() as session:
        total = len(plan_dispatch(session, batch_id, NOW).rows)
        first_shard = next(plan_in_shards(session, batch_id, NOW, shard_size=100))
    assert isinstance(first_shard, PlanShard) and 100 <= len(first_shard.rows) < total
    with transaction(sessions) as session:
        # As if the flow died after the first of its write shards.
        write_assignments(session, first_shard.rows, first_shard.due_at)
    dispatch_all(sessions, batch_id)
    with sessions() as session:
        counts = session.execute(
            select(Item.is_gold, func.count(), func.count(func.distinct(Assignment.expert_id)))
            .join(Assignment, Assignment.item_id == Item.id)
            .group_by(Item.id, Item.is_gold)
        ).all()
        statuses = set(session.scalars(select(Item.status)))
    assert len(counts) == 240 and all(n == d for _, n, d in counts)
    assert {n for gold, n, _ in counts if not gold} == {3}
    assert statuses == {"assigned"}
    assert dispatch_all(sessions, batch_id).assignments == 0


def test_a_missed_deadline_counts_against_the_expert(sessions, project, tmp_path) -> None:
    ids = _only_these_experts(sessions, _one_expert("late"), _one_expert("b"), _one_expert("c"))
    batch_id = _fr_items(sessions, tmp_path, 1)
    dispatch_all(sessions, batch_id)
    with transaction(sessions) as session:
        assert expire_overdue(session, NOW + dt.timedelta(days=2)) == 3
    with sessions() as session:
        assert session.get_one(Expert, ids["late"]).missed_count == 1


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
        assert expire_overdue(session, later) == len(first)
    dispatch_all(sessions, batch_id, later)
    with sessions() as session:
        fresh = set(
            session.execute(
                select(Assignment.item_id, Assignment.expert_id)
                .join(Item, Item.id == Assignment.item_id)
                .where(Assignment.status == "assigned", ~Item.is_gold)
            )
        )
    assert len(fresh) == (240 - 12) * 3
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


def test_an_expert_in_doubt_gets_gold_to_settle_it_and_nobody_else_does(sessions, project) -> None:
    batch_id, _ = ingest_file(sessions, SAMPLES / "items.jsonl")
    dispatch_all(sessions, batch_id)
    with transaction(sessions) as session:
        doubtful, sure, paused = session.scalars(
            select(Assignment.expert_id).distinct().order_by(Assignment.expert_id).limit(3)
        ).all()
        # Their work is done (nothing open), so only what the doubt asks for can come next.
        session.execute(
            update(Assignment)
            .where(Assignment.expert_id.in_([doubtful, sure, paused]))
            .values(status="submitted", submitted_at=utcnow())
        )
        floor = project.project.gates.min_gold_accuracy
        session.execute(update(Expert).where(Expert.id == doubtful).values(reliability=floor - 0.1))
        session.execute(update(Expert).where(Expert.id == sure).values(reliability=0.95))
        session.execute(update(Expert).where(Expert.id == paused).values(reliability=0.2, status="paused"))
        refresh_routes(session, [doubtful, sure, paused])
        # One item still needs an expert: gold is handed out only while a batch has work to staff.
        needy = session.scalar(
            select(Item.id)
            .where(~Item.is_gold, ~Item.id.in_(select(Assignment.item_id).where(Assignment.expert_id == doubtful)))
            .limit(1)
        )
        session.execute(update(Item).where(Item.id == needy).values(status="rework", overlap_target=4))
        held_before = set(session.scalars(select(Assignment.item_id).where(Assignment.expert_id == doubtful)))
    report = dispatch_all(sessions, batch_id)
    with sessions() as session:
        new = session.execute(
            select(Assignment.expert_id, Assignment.item_id, Item.is_gold)
            .join(Item, Item.id == Assignment.item_id)
            .where(Assignment.status == "assigned", Assignment.expert_id.in_([doubtful, sure, paused]))
        ).all()
    gold = [(expert, item) for expert, item, is_gold in new if is_gold]
    assert report.gold_assignments == len(gold) == DOUBT_GOLD
    assert {expert for expert, _ in gold} == {doubtful}
    assert not {item for _, item, _ in new} & held_before
