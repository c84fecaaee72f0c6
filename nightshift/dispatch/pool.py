"""The experts a plan hands work to: per-route heaps over shared live state, and working windows."""

from __future__ import annotations

import datetime as dt
import heapq
import math
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from functools import lru_cache
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from nightshift.experts.registry import RELIABILITY_PRIOR
from nightshift.experts.routing import Candidate, shortlists


def hours_until_window(now: dt.datetime, timezone: str, start_hour: int, hours: int) -> float:
    """Hours from now until the expert's working window opens in their own time zone (0 if open)."""
    local = now.astimezone(_zone(timezone))
    today = local.replace(hour=start_hour, minute=0, second=0, microsecond=0)
    # Yesterday's window may run past midnight into today.
    for start in (today - dt.timedelta(days=1), today, today + dt.timedelta(days=1)):
        if start <= local < start + dt.timedelta(hours=hours):
            return 0.0
        if start > local:
            return (start - local).total_seconds() / 3600
    return 24.0


@lru_cache(maxsize=4096)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


# Every reliability at or above a new expert's (experts.registry.RELIABILITY_PRIOR) is one band.
QUALITY_BAND_CAP = RELIABILITY_PRIOR


@dataclass(eq=False, slots=True)
class _Expert:
    """One expert's live state, shared by every (skill, language) heap the expert sits in."""

    expert_id: int
    load: int
    capacity: int
    reliability: float
    wait_hours: float
    rate: float
    region: str
    work_hours: int
    new: int = 0
    routes: set[tuple[str, str]] = field(default_factory=set)
    sun: float = 0.0

    def __post_init__(self) -> None:
        self.sun = math.ceil(self.wait_hours)

    def key(self) -> tuple[float, float, float, float, int, int]:
        # Quality ahead of load: an expert whose reliability has fallen under a new expert's prior
        # gets work only when the others are full (capacity stays a hard limit). At or above the
        # prior all are one band, so new experts get their share and their quality is learnt.
        # Then least loaded relative to capacity (fair spread), then whose working window opens
        # soonest (follow the sun), then most reliable.
        band = min(math.floor(self.reliability * 10) / 10, QUALITY_BAND_CAP)
        return (-band, self.load / self.capacity, self.sun, -self.reliability, self.expert_id, self.load)


Route = tuple[str, str]  # (skill, language)


class Pool:
    """Per-route heaps over shared expert state, filled from the routing index a page at a time."""

    def __init__(self, session: Session, required: list[str], now: dt.datetime, min_level: int = 0) -> None:
        self.session = session
        self.required = required
        self.min_level = min_level
        self.now = now
        self.experts: dict[int, _Expert] = {}
        self.heaps: dict[Route, list[tuple[float, float, float, float, int, int]]] = {}
        self.offsets: dict[Route, int] = {}
        self.exhausted: set[Route] = set()
        self.ever_found: set[Route] = set()
        self._windows: dict[tuple[str, int, int], float] = {}

    def _wait(self, c: Candidate) -> float:
        key = (c.timezone, c.work_start_hour, c.work_hours)
        if key not in self._windows:
            self._windows[key] = hours_until_window(self.now, *key)
        return self._windows[key]

    def fill(self, wanted: dict[Route, int]) -> None:
        """Read the next page of candidates for these routes, half as many again as the work to hand
        out (room to spread it fairly): one statement for all of them."""
        pages = {}
        for route, n in wanted.items():
            if route not in self.exhausted:
                pages[route] = (max(n + n // 2 + 20, 50), self.offsets.get(route, 0))
        for route, found in shortlists(self.session, pages, self.required, self.min_level).items():
            limit, offset = pages[route]
            self.offsets[route] = offset + len(found)
            if len(found) < limit:
                self.exhausted.add(route)
            heap = self.heaps.setdefault(route, [])
            if found:
                self.ever_found.add(route)
            for c in found:
                expert = self.experts.get(c.expert_id)
                if expert is None:
                    expert = _Expert(
                        c.expert_id,
                        c.load,
                        c.capacity,
                        c.reliability,
                        self._wait(c),
                        c.hourly_rate,
                        c.timezone.split("/")[0],
                        c.work_hours,
                    )
                    self.experts[c.expert_id] = expert
                if expert.load < expert.capacity:
                    heap.append(expert.key())
            heapq.heapify(heap)

    def give_back(self, route: Route, chosen: list[_Expert]) -> None:
        """Undo a take(): the plan left the item unstaffed after all."""
        for expert in chosen:
            expert.load -= 1
            expert.new -= 1
            heapq.heappush(self.heaps[route], expert.key())

    def take(self, route: Route, count: int, exclude: AbstractSet[int], wanted: int) -> list[_Expert]:
        if route not in self.heaps:
            self.fill({route: wanted})
        heap = self.heaps[route]
        chosen: list[_Expert] = []
        chosen_ids: set[int] = set()
        passed_over: list[tuple[float, float, float, float, int, int]] = []
        while len(chosen) < count:
            if not heap:
                if route in self.exhausted:
                    break
                self.fill({route: wanted})
                continue
            entry = heapq.heappop(heap)
            expert = self.experts[entry[4]]
            if expert.load >= expert.capacity:
                continue  # full: leaves this heap for good
            if entry[5] != expert.load:
                heapq.heappush(heap, expert.key())  # load changed since this entry was pushed
                continue
            if expert.expert_id in exclude or expert.expert_id in chosen_ids:
                passed_over.append(entry)
                continue
            chosen.append(expert)
            chosen_ids.add(expert.expert_id)
        for expert in chosen:
            expert.load += 1
            expert.new += 1
            expert.routes.add(route)
            if expert.load < expert.capacity:
                heapq.heappush(heap, expert.key())
        for entry in passed_over:
            heapq.heappush(heap, entry)
        return chosen
