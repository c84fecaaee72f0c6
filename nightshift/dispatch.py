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
        session.scalars(select(Item.id).where(Item.batch_id == batch_id, Item.status.in_(STAFFABLE)).order_by(Item.id))
    )


def shards(ids: list[int], size: int) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


@dataclass
class _Expert:
    """One expert's live state, shared by every language heap the expert sits in."""

    expert_id: int
    load: int
    capacity: int
    reliability: float
    wait_hours: float
    rate: float

    def key(self) -> tuple[float, float, float, int, int]:
        # Least loaded (relative to capacity) first, then most reliable, then soonest at work.
        return (self.load / self.capacity, -self.reliability, self.wait_hours, self.expert_id, self.load)


class _Pool:
    """Per-language heaps over shared expert state; stale entries are refreshed when popped."""

    def __init__(self, experts: dict[int, _Expert], languages: dict[int, list[str]]) -> None:
        self.experts = experts
        self.heaps: dict[str, list[tuple[float, float, float, int, int]]] = defaultdict(list)
        for expert_id, langs in languages.items():
            for language in langs:
                self.heaps[language].append(experts[expert_id].key())
        for heap in self.heaps.values():
            heapq.heapify(heap)

    def take(self, language: str, count: int, exclude: set[int]) -> list[_Expert]:
        heap = self.heaps.get(language, [])
        chosen: list[_Expert] = []
        passed_over: list[tuple[float, float, float, int, int]] = []
        while heap and len(chosen) < count:
            entry = heapq.heappop(heap)
            expert = self.experts[entry[3]]
            if expert.load >= expert.capacity:
                continue  # full: leaves this heap for good
            if entry[4] != expert.load:
                heapq.heappush(heap, expert.key())  # load changed since this entry was pushed
                continue
            if expert.expert_id in exclude:
                passed_over.append(entry)
                continue
            chosen.append(expert)
        for expert in chosen:
            expert.load += 1
            if expert.load < expert.capacity:
                heapq.heappush(heap, expert.key())
        for entry in passed_over:
            heapq.heappush(heap, entry)
        return chosen


def _candidates(session: Session, skills: list[str], languages: set[str], now: dt.datetime) -> _Pool:
    """Qualified experts with room, in a pool ordered per language."""
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
    experts: dict[int, _Expert] = {}
    spoken: dict[int, list[str]] = defaultdict(list)
    for eid, tz, start, hours, reliability, capacity, rate, language, load in session.execute(query):
        if eid not in experts:
            wait = hours_until_window(now, tz, start, hours)
            experts[eid] = _Expert(eid, load, capacity, reliability, wait, float(rate))
        spoken[eid].append(language)
    return _Pool(experts, spoken)


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

    pool = _candidates(session, project.required_skills, {lang for _, lang, _ in items}, now)
    due = now + dt.timedelta(hours=project.assignment_deadline_hours)
    new_rows: list[dict[str, object]] = []
    staffed: list[int] = []
    hours_per_item = project.expected_minutes_per_item / 60
    why_by_language: dict[str, str] = {}
    for item_id, language, target in items:
        need = (target or project.overlap.min) - live[item_id]
        chosen = pool.take(language, need, seen[item_id]) if need > 0 else []
        for expert in chosen:
            new_rows.append(
                {
                    "item_id": item_id,
                    "expert_id": expert.expert_id,
                    "role": "annotate",
                    "status": "assigned",
                    "due_at": due,
                }
            )
            report.expected_cost += hours_per_item * expert.rate
        report.by_language[language] += len(chosen)
        if live[item_id] + len(chosen) == 0:
            if language not in why_by_language:
                why_by_language[language] = _why_unassignable(session, project.required_skills, language)
            report.unassignable[item_id] = why_by_language[language]
        else:
            staffed.append(item_id)  # a partly staffed item is topped up by the next dispatch

    report.assignments = insert_ignoring_conflicts(session, Assignment, new_rows, ["item_id", "expert_id", "role"])
    report.fully_staffed = len(staffed)
    if staffed:
        session.execute(update(Item).where(Item.id.in_(staffed)).values(status="assigned", status_reason=None))
    for reason in set(report.unassignable.values()):
        ids = [i for i, why in report.unassignable.items() if why == reason]
        session.execute(update(Item).where(Item.id.in_(ids)).values(status="unassignable", status_reason=reason))
    if batch.status == "ingested":
        batch.status = "dispatched"
        record_transition(session, "batch", batch_id, "ingested", "dispatched", "dispatch")
    return report


def _why_unassignable(session: Session, skills: list[str], language: str) -> str:
    qualified = (
        select(func.count())
        .select_from(Expert)
        .join(ExpertLanguage, and_(ExpertLanguage.expert_id == Expert.id, ExpertLanguage.language == language))
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
            select(Assignment.id, Assignment.item_id).where(Assignment.status == "assigned", Assignment.due_at < now)
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
