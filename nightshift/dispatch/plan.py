"""Dispatch: route each item to N distinct qualified experts, spreading load, following the sun.

Planning happens in one place per batch (so capacity is exact), reading only a shortlist of the
best candidates per (skill, language) from the routing index, never the whole pool. Writing the
plan is set-based and may be split into shards; the unique key (item, expert, role) means a
re-run after a crash adds only what is missing.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session

from nightshift.dispatch.pool import Pool, Route
from nightshift.experts.routing import ANY_SKILL
from nightshift.generate.responses import answered_by_every_endpoint
from nightshift.platform.heap import collection_paused
from nightshift.platform.models import Assignment, Expert, ExpertRoute, ExpertSkill, Item
from nightshift.projects.registry import batch_body
from nightshift.projects.spec import ProjectBody

LIVE_ANNOTATION = ("assigned", "submitted", "accepted")
# Gold items kept open for an expert in doubt (see _gold_for_doubtful).
DOUBT_GOLD = 2
# ...and at most this many in one batch: past it, the expert's record is what it is.
DOUBT_GOLD_PER_BATCH = 6
# Unassignable items are tried again at every dispatch: an expert who can take them may have joined.
STAFFABLE = ("pending", "rework", "unassignable")


@dataclass(frozen=True)
class BudgetRoom:
    """What one budget (a batch's, a project's) leaves for new work: dollars and expert hours,
    None where it sets no limit. key: the budget's (payouts.budgets.Standing.key)."""

    key: str
    usd: float | None
    hours: float | None


@dataclass(frozen=True)
class Room:
    """What a batch's budgets leave for new work (payouts.budgets.room)."""

    budgets: tuple[BudgetRoom, ...] = ()

    def exceeded(self, usd: float, hours: float) -> BudgetRoom | None:
        """The first budget that this much new work would pass."""
        for budget in self.budgets:
            if (budget.usd is not None and usd > budget.usd) or (budget.hours is not None and hours > budget.hours):
                return budget
        return None


@dataclass
class DispatchReport:
    items: int = 0
    assignments: int = 0
    unassignable: dict[int, str] = field(default_factory=dict)
    by_language: Counter[str] = field(default_factory=Counter)
    by_skill: Counter[str] = field(default_factory=Counter)
    by_region: Counter[str] = field(default_factory=Counter)
    expected_hours: float = 0.0
    expected_cost: float = 0.0
    projected_finish: dt.datetime | None = None
    gold_assignments: int = 0
    # Items of a project whose models have not all answered them yet: they wait for the next
    # generate run, as the expert would have nothing to judge.
    awaiting_models: int = 0
    # Items left unstaffed because the next one's expected cost would pass a budget, and its key.
    budget_held: int = 0
    budget_stop_key: str | None = None


@dataclass
class DispatchPlan:
    """New (item, expert) annotation assignments for a batch, and what they add up to."""

    batch_id: int
    rows: list[tuple[int, int]]
    due_at: dt.datetime
    report: DispatchReport
    # Items already staffed that get no new rows (the writes mark the others assigned).
    staffed: list[int] = field(default_factory=list)


@dataclass
class PlanShard:
    """Planned rows for a run of whole items: a shard marks its items assigned, so it carries all
    of each item's new annotators."""

    index: int
    rows: list[tuple[int, int]]
    due_at: dt.datetime


_NOBODY: frozenset[int] = frozenset()


def _route_skill(project: ProjectBody, item_skill: str | None) -> str:
    """The skill an item is routed by: its own, else the project's first required one, else any.
    Every route also demands all of the project's required skills (see routing.shortlists)."""
    if item_skill and item_skill.strip():
        return item_skill.strip()
    return project.required_skills[0] if project.required_skills else ANY_SKILL


def plan_dispatch(session: Session, batch_id: int, now: dt.datetime) -> DispatchPlan:
    """Choose experts for every item of the batch that still lacks annotators. Reads only."""
    rows: list[tuple[int, int]] = []
    for part in plan_in_shards(session, batch_id, now, shard_size=0):
        if isinstance(part, PlanShard):
            rows += part.rows
        else:
            part.rows = rows
            return part
    raise AssertionError("a plan always ends with its summary")


def plan_in_shards(
    session: Session, batch_id: int, now: dt.datetime, shard_size: int, room: Room | None = None
) -> Iterator[PlanShard | DispatchPlan]:
    """plan_dispatch() a shard at a time: each shard of about `shard_size` rows (0: one shard) as
    soon as its items are planned, so writing it overlaps planning the rest; the gold mix-in (which
    needs every expert's share) last; then the plan's summary, its rows not repeated. Reads only.
    room: what the budgets leave; items are staffed in order until the next would pass it."""
    # A plan builds hundreds of thousands of small acyclic objects; the cyclic collector's passes
    # over them cost a real share of the plan's time and can free nothing (bench/dispatch.py).
    # The process's one switch, so a pause around this one (a flow's) is not ended early by it.
    with collection_paused():
        yield from _plan(session, batch_id, now, shard_size, room or Room())


def _plan(
    session: Session, batch_id: int, now: dt.datetime, shard_size: int, room: Room
) -> Iterator[PlanShard | DispatchPlan]:
    project = batch_body(session, batch_id)
    due = now + dt.timedelta(hours=project.assignment_deadline_hours)
    skill_of = Item.payload[project.skill_field].as_string() if project.skill_field else literal(None)
    staffable = select(Item.id, Item.language, skill_of, Item.overlap_target, Item.is_gold).where(
        Item.batch_id == batch_id, Item.status.in_(STAFFABLE)
    )
    awaiting = 0
    if project.generation:
        answered = answered_by_every_endpoint(Item.id, [e.name for e in project.generation.endpoints])
        awaiting = session.scalar(select(func.count()).select_from(staffable.where(~answered).subquery())) or 0
        staffable = staffable.where(answered)
    items = session.execute(staffable.order_by(Item.id)).all()
    report = DispatchReport(items=len(items), awaiting_models=awaiting)
    if not items:
        # Nothing to staff: no gold either, not even for an expert in doubt. A gold item handed
        # out now would hold a batch that is otherwise done.
        yield DispatchPlan(batch_id, [], due, report)
        return
    live: Counter[int] = Counter()
    # Never give an item back to an expert who already held it, whatever became of that assignment.
    seen: dict[int, set[int]] = defaultdict(set)
    held = session.execute(
        select(Assignment.item_id, Assignment.expert_id, Assignment.role, Assignment.status)
        .join(Item, Item.id == Assignment.item_id)
        .where(Item.batch_id == batch_id, Item.status.in_(STAFFABLE))
    )
    for item_id, expert_id, role, status in held:
        seen[item_id].add(expert_id)
        if role == "annotate" and status in LIVE_ANNOTATION:
            live[item_id] += 1

    work: list[tuple[int, Route, int, bool]] = []
    wanted: Counter[Route] = Counter()
    skill_of_item: dict[str | None, str] = {}
    for item_id, language, item_skill, target, is_gold in items:
        if item_skill not in skill_of_item:
            skill_of_item[item_skill] = _route_skill(project, item_skill)
        skill = skill_of_item[item_skill]
        # A gold item is scored against its known answer, not aggregated: one expert settles it
        # (the gold mix-in below hands it to more, as their checks).
        need = (1 if is_gold else target or project.overlap.min) - live[item_id]
        route = (skill, language)
        work.append((item_id, route, need, is_gold))
        wanted[route] += max(need, 0)

    staffed: list[int] = []
    pool = Pool(session, list(dict.fromkeys(project.required_skills)), now, project.skill_level or 0)
    pool.fill({route: n for route, n in wanted.items() if n > 0})
    rows: list[tuple[int, int]] = []
    shard_index = itertools.count()
    touched: set[int] = set()

    def cut(rows: list[tuple[int, int]]) -> PlanShard:
        touched.update(item for item, _ in rows)
        report.assignments += len(rows)
        return PlanShard(next(shard_index), rows, due)

    hours_per_item = project.expected_minutes_per_item / 60
    # Each item's cost counts the gold its experts will be given with it (the project's gold rate).
    with_gold = hours_per_item / (1 - project.gold_rate)
    budgeted = bool(room.budgets)
    planned_usd = planned_hours = 0.0
    held_for_budget: list[int] = []
    for item_id, route, need, is_gold in work:
        if shard_size and len(rows) >= shard_size:
            yield cut(rows)
            rows = []
        if report.budget_stop_key is not None and need > 0:
            held_for_budget.append(item_id)
            continue
        chosen = pool.take(route, need, seen.get(item_id, _NOBODY), wanted[route]) if need > 0 else []
        if budgeted and chosen:
            usd = planned_usd + sum(with_gold * expert.rate for expert in chosen)
            hours = planned_hours + with_gold * len(chosen)
            if (passed := room.exceeded(usd, hours)) is not None:
                # A hard limit: this item and every one after it wait until ops raise the budget.
                pool.give_back(route, chosen)
                report.budget_stop_key = passed.key
                held_for_budget.append(item_id)
                continue
            planned_usd, planned_hours = usd, hours
        for expert in chosen:
            # Only the gold mix-in below looks again at who holds an item, and only at gold items:
            # a set per item of a big batch would be most of the plan's memory.
            if is_gold:
                seen[item_id].add(expert.expert_id)
            rows.append((item_id, expert.expert_id))
            report.expected_cost += hours_per_item * expert.rate
            report.by_region[expert.region] += 1
        report.by_language[route[1]] += len(chosen)
        report.by_skill[route[0]] += len(chosen)
        if live[item_id] + len(chosen):
            staffed.append(item_id)
        else:
            report.unassignable[item_id] = _why_unassignable(route, project.required_skills, route in pool.ever_found)
    # The gold mix-in needs every expert's share of the batch, so it rides with the last shard. A
    # run cut short before it loses no gold: the next plan mixes gold in by expert, whatever the
    # gold items' status.
    rows += _mix_in_gold(session, batch_id, project, pool, seen, report)
    rows += _gold_for_doubtful(session, batch_id, project, seen, report)
    if rows:
        yield cut(rows)
    # A gold item held back may still have gone to an expert as a check (the gold mix-in).
    report.budget_held = sum(1 for item_id in held_for_budget if item_id not in touched)
    report.expected_hours = report.assignments * hours_per_item
    report.projected_finish = _projected_finish(pool.experts.values(), hours_per_item, now)
    # Items the writes will mark assigned need nothing more; the rest (annotators already there,
    # nothing new) are left for finish_dispatch.
    yield DispatchPlan(batch_id, [], due, report, [i for i in staffed if i not in touched])


def _mix_in_gold(
    session: Session,
    batch_id: int,
    project: ProjectBody,
    pool: Pool,
    seen: dict[int, set[int]],
    report: DispatchReport,
) -> list[tuple[int, int]]:
    """Give each expert with new work enough of the batch's gold items that gold makes up the
    project's gold rate of their assignments. A gold item looks like any other to the expert, and
    may go to any number of experts: it is scored against its known answer, never aggregated."""
    if project.gold_rate <= 0:
        return []
    by_route = _gold_by_route(session, batch_id, project)
    if not by_route:
        return []
    held_gold: Counter[int] = Counter()
    for item_ids in by_route.values():
        for item_id in item_ids:
            for expert_id in seen.get(item_id, ()):
                held_gold[expert_id] += 1
    rows: list[tuple[int, int]] = []
    hours_per_item = project.expected_minutes_per_item / 60
    carry = 0.0
    for expert in sorted(pool.experts.values(), key=lambda e: e.expert_id):
        if not expert.new:
            continue
        # Carried across experts, so the batch as a whole meets the rate even where one expert's
        # share is a fraction of an item.
        carry += expert.new * project.gold_rate / (1 - project.gold_rate)
        want = math.floor(carry) - held_gold[expert.expert_id]
        carry -= math.floor(carry)
        offered = (i for route in sorted(expert.routes) for i in by_route.get(route, ()))
        for item_id in offered:
            if want <= 0 or expert.load >= expert.capacity:
                break
            if expert.expert_id in seen[item_id]:
                continue
            seen[item_id].add(expert.expert_id)
            rows.append((item_id, expert.expert_id))
            expert.load += 1
            expert.new += 1
            want -= 1
            report.expected_cost += hours_per_item * expert.rate
    report.gold_assignments = len(rows)
    return rows


def _gold_by_route(session: Session, batch_id: int, project: ProjectBody) -> dict[Route, list[int]]:
    """The batch's gold items by the route (skill, language) an expert needs to take them."""
    skill_of = Item.payload[project.skill_field].as_string() if project.skill_field else literal(None)
    by_route: dict[Route, list[int]] = defaultdict(list)
    for item_id, language, item_skill in session.execute(
        select(Item.id, Item.language, skill_of).where(Item.batch_id == batch_id, Item.is_gold).order_by(Item.id)
    ):
        by_route[(_route_skill(project, item_skill), language)].append(item_id)
    return by_route


def _gold_for_doubtful(
    session: Session, batch_id: int, project: ProjectBody, seen: dict[int, set[int]], report: DispatchReport
) -> list[tuple[int, int]]:
    """Gold items for the batch's experts in doubt: their estimate is under the project's floor but
    not surely (they are not paused). Ranked behind everyone else, they get little other work, so
    nothing new would ever settle the doubt; a few known answers settle it either way, for the
    price of those few answers. Up to DOUBT_GOLD open at a time and DOUBT_GOLD_PER_BATCH gold
    items in the batch, within capacity."""
    if project.gold_rate <= 0:
        return []
    in_batch = select(Assignment.expert_id).join(Item, Item.id == Assignment.item_id).where(Item.batch_id == batch_id)
    doubtful = {
        expert_id: (capacity, float(rate))
        for expert_id, capacity, rate in session.execute(
            select(Expert.id, Expert.capacity, Expert.hourly_rate).where(
                Expert.status == "active",
                Expert.reliability < project.gates.min_gold_accuracy,
                Expert.id.in_(in_batch),
            )
        )
    }
    if not doubtful:
        return []
    ids = sorted(doubtful)
    load: Counter[int] = Counter()
    open_gold: Counter[int] = Counter()
    held: set[tuple[int, int]] = set()
    batch_gold: Counter[int] = Counter()
    for expert_id, item_id, batch, status, is_gold in session.execute(
        select(Assignment.expert_id, Assignment.item_id, Item.batch_id, Assignment.status, Item.is_gold)
        .join(Item, Item.id == Assignment.item_id)
        .where(Assignment.expert_id.in_(ids), (Assignment.status == "assigned") | (Item.batch_id == batch_id))
    ):
        if batch == batch_id:
            held.add((expert_id, item_id))
            batch_gold[expert_id] += bool(is_gold)
        if status == "assigned":
            load[expert_id] += 1
            open_gold[expert_id] += bool(is_gold)
    required = set(project.required_skills)
    skills: dict[int, set[str]] = defaultdict(set)
    for expert_id, skill in session.execute(
        select(ExpertSkill.expert_id, ExpertSkill.skill).where(
            ExpertSkill.expert_id.in_(ids), ExpertSkill.level >= (project.skill_level or 0)
        )
    ):
        skills[expert_id].add(skill)
    routes: dict[int, set[Route]] = defaultdict(set)
    for expert_id, skill, language in session.execute(
        select(ExpertRoute.expert_id, ExpertRoute.skill, ExpertRoute.language).where(
            ExpertRoute.expert_id.in_(ids), ExpertRoute.level >= (project.skill_level or 0)
        )
    ):
        routes[expert_id].add((skill, language))
    by_route = _gold_by_route(session, batch_id, project)
    rows: list[tuple[int, int]] = []
    hours_per_item = project.expected_minutes_per_item / 60
    for expert_id in ids:
        if not required <= skills[expert_id]:
            continue
        capacity, rate = doubtful[expert_id]
        want = min(
            DOUBT_GOLD - open_gold[expert_id],
            DOUBT_GOLD_PER_BATCH - batch_gold[expert_id],
            capacity - load[expert_id],
        )
        for item_id in (i for route in sorted(routes[expert_id]) for i in by_route.get(route, ())):
            if want <= 0:
                break
            if expert_id in seen[item_id] or (expert_id, item_id) in held:
                continue
            seen[item_id].add(expert_id)
            rows.append((item_id, expert_id))
            want -= 1
            report.expected_cost += hours_per_item * rate
    report.gold_assignments += len(rows)
    return rows


def _projected_finish(experts: Any, hours_per_item: float, now: dt.datetime) -> dt.datetime | None:
    """When the last expert with new work would finish their queue, working only their window."""
    latest = 0.0
    for e in experts:
        if not e.new:
            continue
        queue = e.load * hours_per_item
        full_days = max(0, math.ceil(queue / e.work_hours) - 1)
        latest = max(latest, e.wait_hours + full_days * 24 + (queue - full_days * e.work_hours))
    return now + dt.timedelta(hours=latest) if latest else None


def _why_unassignable(route: Route, required: list[str], anyone: bool) -> str:
    skill, language = route
    skills = sorted({*required, skill} - {ANY_SKILL})
    if not anyone:
        return f"no active expert with skills {skills} and language {language!r}"
    return f"every qualified expert for language {language!r} is at capacity or already had this item"
