"""Dispatch: route each item to N distinct qualified experts, spreading load, following the sun."""

from __future__ import annotations

import datetime as dt
import heapq
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from nightshift.audit import record_transition
from nightshift.models import Assignment, Batch, Expert, ExpertLanguage, ExpertSkill, Item
from nightshift.projects import project_spec
from nightshift.sql import insert_ignoring_conflicts

LIVE_ANNOTATION = ("assigned", "submitted", "accepted")
STAFFABLE = ("pending", "rework")


@dataclass
class DispatchReport:
    items: int = 0
    assignments: int = 0
    fully_staffed: int = 0
    unassignable: dict[int, str] = field(default_factory=dict)
    by_language: Counter[str] = field(default_factory=Counter)
    expected_cost: float = 0.0

    def add(self, other: DispatchReport) -> None:
        self.items += other.items
        self.assignments += other.assignments
        self.fully_staffed += other.fully_staffed
        self.unassignable.update(other.unassignable)
        self.by_language.update(other.by_language)
        self.expected_cost += other.expected_cost


def hours_until_window(now: dt.datetime, timezone: str, start_hour: int, hours: int) -> float:
    """Hours from now until the expert's working window opens in their own time zone (0 if open)."""
    local = now.astimezone(ZoneInfo(timezone))
    today = local.replace(hour=start_hour, minute=0, second=0, microsecond=0)
    # Yesterday's window may run past midnight into today.
    for start in (today - dt.timedelta(days=1), today, today + dt.timedelta(days=1)):
        if start <= local < start + dt.timedelta(hours=hours):
            return 0.0
        if start > local:
            return (start - local).total_seconds() / 3600
    return 24.0


def items_to_staff(session: Session, batch_id: int) -> list[int]:
    return list(
        session.scalars(
            select(Item.id).where(Item.batch_id == batch_id, Item.status.in_(STAFFABLE)).order_by(Item.id)
        )
    )


def shards(ids: list[int], size: int) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


@dataclass(order=True)
class _Slot:
    load_ratio: float
    neg_reliability: float
    wait_hours: float
    expert_id: int
    load: int = field(compare=False)
    capacity: int = field(compare=False)
    rate: float = field(compare=False)


def _candidates(
    session: Session, skills: list[str], languages: set[str], now: dt.datetime
) -> dict[str, list[_Slot]]:
    """A heap of qualified experts with room, per language, best first."""
    open_load = (
        select(Assignment.expert_id, func.count().label("load"))
        .where(Assignment.status == "assigned")
        .group_by(Assignment.expert_id)
        .subquery()
    )
    query = (
        select(
            Expert.id,
            Expert.timezone,
            Expert.work_start_hour,
            Expert.work_hours,
            Expert.reliability,
            Expert.capacity,
            Expert.hourly_rate,
            ExpertLanguage.language,
            func.coalesce(open_load.c.load, 0),
        )
        .join(ExpertLanguage, ExpertLanguage.expert_id == Expert.id)
        .outerjoin(open_load, open_load.c.expert_id == Expert.id)
        .where(Expert.status == "active", ExpertLanguage.language.in_(languages))
        .where(Expert.capacity > func.coalesce(open_load.c.load, 0))
    )
    if skills:
        has_skills = (
            select(ExpertSkill.expert_id)
            .where(ExpertSkill.skill.in_(skills))
            .group_by(ExpertSkill.expert_id)
            .having(func.count() == len(set(skills)))
        )
        query = query.where(Expert.id.in_(has_skills))
    heaps: dict[str, list[_Slot]] = defaultdict(list)
    for eid, tz, start, hours, reliability, capacity, rate, language, load in session.execute(query):
        wait = hours_until_window(now, tz, start, hours)
        heaps[language].append(_Slot(load / capacity, -reliability, wait, eid, load, capacity, float(rate)))
    for heap in heaps.values():
        heapq.heapify(heap)
    return heaps


def dispatch_items(session: Session, batch_id: int, item_ids: list[int], now: dt.datetime) -> DispatchReport:
    """Give each item the annotators it still lacks. Safe to repeat: unique keys stop doubles."""
    report = DispatchReport()
    if not item_ids:
        return report
    batch = session.get_one(Batch, batch_id)
    project = project_spec(session, batch.project_id).project
    items = session.execute(
        select(Item.id, Item.language, Item.overlap_target)
        .where(Item.id.in_(item_ids), Item.status.in_(STAFFABLE))
        .order_by(Item.id)
    ).all()
    report.items = len(items)
    if not items:
        return report
    live = Counter(
        dict(
            session.execute(
                select(Assignment.item_id, func.count())
                .where(
                    Assignment.item_id.in_(item_ids),
                    Assignment.role == "annotate",
                    Assignment.status.in_(LIVE_ANNOTATION),
                )
                .group_by(Assignment.item_id)
            )
            .tuples()
            .all()
        )
    )
    # Never give an item back to an expert who already held it, whatever became of that assignment.
    seen: dict[int, set[int]] = defaultdict(set)
    for item_id, expert_id in session.execute(
        select(Assignment.item_id, Assignment.expert_id).where(Assignment.item_id.in_(item_ids))
    ):
        seen[item_id].add(expert_id)

    heaps = _candidates(session, project.required_skills, {lang for _, lang, _ in items}, now)
    due = now + dt.timedelta(hours=project.assignment_deadline_hours)
    new_rows: list[dict[str, object]] = []
    staffed: list[int] = []
    minutes = project.expected_minutes_per_item
    for item_id, language, target in items:
        need = (target or project.overlap.min) - live[item_id]
        heap = heaps.get(language, [])
        chosen: list[_Slot] = []
        skipped: list[_Slot] = []
        while heap and len(chosen) < need:
            slot = heapq.heappop(heap)
            (skipped if slot.expert_id in seen[item_id] else chosen).append(slot)
        for slot in chosen:
            new_rows.append(
                {
                    "item_id": item_id,
                    "expert_id": slot.expert_id,
                    "role": "annotate",
                    "status": "assigned",
                    "due_at": due,
                }
            )
            report.expected_cost += minutes / 60 * slot.rate
            slot.load += 1
            slot.load_ratio = slot.load / slot.capacity
            if slot.load < slot.capacity:
                skipped.append(slot)
        for slot in skipped:
            heapq.heappush(heap, slot)
        report.by_language[language] += len(chosen)
        if need <= 0 or len(chosen) == need:
            staffed.append(item_id)
        elif live[item_id] + len(chosen) == 0:
            report.unassignable[item_id] = _why_unassignable(session, project.required_skills, language)
        else:
            staffed.append(item_id)  # partly staffed: the next dispatch tops it up

    report.assignments = insert_ignoring_conflicts(
        session, Assignment, new_rows, ["item_id", "expert_id", "role"]
    )
    report.fully_staffed = len(staffed)
    if staffed:
        session.execute(
            update(Item).where(Item.id.in_(staffed)).values(status="assigned", status_reason=None)
        )
    for item_id, reason in report.unassignable.items():
        session.execute(
            update(Item).where(Item.id == item_id).values(status="unassignable", status_reason=reason)
        )
    if batch.status == "ingested":
        batch.status = "dispatched"
        record_transition(session, "batch", batch_id, "ingested", "dispatched", "dispatch")
    return report


def _why_unassignable(session: Session, skills: list[str], language: str) -> str:
    qualified = (
        select(func.count())
        .select_from(Expert)
        .join(
            ExpertLanguage, and_(ExpertLanguage.expert_id == Expert.id, ExpertLanguage.language == language)
        )
        .where(Expert.status == "active")
    )
    if skills:
        qualified = qualified.where(
            Expert.id.in_(
                select(ExpertSkill.expert_id)
                .where(ExpertSkill.skill.in_(skills))
                .group_by(ExpertSkill.expert_id)
                .having(func.count() == len(set(skills)))
            )
        )
    if session.scalar(qualified) == 0:
        return f"no active expert with skills {sorted(skills)} and language {language!r}"
    return f"every qualified expert for language {language!r} is at capacity or already had this item"


def expire_overdue(session: Session, now: dt.datetime) -> int:
    """Assignments past their due time expire; their items go back to be staffed again."""
    overdue = list(
        session.execute(
            select(Assignment.id, Assignment.item_id).where(
                Assignment.status == "assigned", Assignment.due_at < now
            )
        ).tuples()
    )
    if not overdue:
        return 0
    session.execute(
        update(Assignment)
        .where(Assignment.id.in_([a for a, _ in overdue]))
        .values(status="expired", status_reason="not submitted by its due time")
    )
    session.execute(
        update(Item)
        .where(Item.id.in_({i for _, i in overdue}), Item.status == "assigned")
        .values(status="rework", status_reason="an assignment expired")
    )
    return len(overdue)
