"""Expert levels: from the level an expert holds in a project's skills (granted by exams) and
their quality estimate, the project's level they are at, and the hourly rate it pays."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightshift.experts.registry import skill_levels
from nightshift.platform.models import Expert, ExpertSkill
from nightshift.projects.spec import Level, ProjectBody


def skill_floor(held: dict[str, int], required: Iterable[str]) -> int:
    """The lowest level held across the required skills (0 if one is only claimed or missing;
    with none required, the level an exam granted in any skill is no floor: 0 too)."""
    levels = [held.get(skill, 0) for skill in required]
    return min(levels) if levels else 0


def level_of(project: ProjectBody, held: dict[str, int], reliability: float) -> Level | None:
    """The best-paid of the project's levels the expert meets, or None (no levels, or none met)."""
    floor = skill_floor(held, project.required_skills)
    met = [
        level
        for level in project.payouts.levels or []
        if floor >= level.min_skill_level and reliability >= level.min_quality
    ]
    return max(met, key=lambda level: level.hourly_rate, default=None)


def rate_for(
    project: ProjectBody, held: dict[str, int], reliability: float, own_rate: Decimal
) -> tuple[Decimal, str | None]:
    """(hourly rate, level name): the level's rate; where none is met, the expert's own rate up to
    the lowest level's (so reaching a level never lowers pay)."""
    level = level_of(project, held, reliability)
    if level is not None:
        return level.hourly_rate, level.name
    floor = min((lv.hourly_rate for lv in project.payouts.levels or []), default=own_rate)
    return min(own_rate, floor), None


class SkillLevels:
    """Experts' skill levels, read once for a pay run."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._held: dict[int, dict[str, int]] | None = None

    def __call__(self, expert_id: int) -> dict[str, int]:
        if self._held is None:
            held: dict[int, dict[str, int]] = defaultdict(dict)
            for eid, skill, level in self._session.execute(
                select(ExpertSkill.expert_id, ExpertSkill.skill, ExpertSkill.level).where(ExpertSkill.level > 0)
            ):
                held[eid][skill] = level
            self._held = held
        return self._held.get(expert_id, {})


def expert_levels(
    session: Session, expert_id: int, projects: Iterable[tuple[str, ProjectBody]]
) -> list[dict[str, Any]]:
    """For the earnings page: in each project with levels, the level the expert is at now and its rate."""
    held = skill_levels(session, expert_id)
    reliability, own = session.execute(
        select(Expert.reliability, Expert.hourly_rate).where(Expert.id == expert_id)
    ).one()
    found = []
    for name, project in projects:
        if not project.payouts.levels:
            continue
        rate, level = rate_for(project, held, reliability, Decimal(own))
        found.append({"project": name, "level": level or "(none: your own rate)", "hourly_rate": rate})
    return found
