"""The routing index: which active experts can take a (skill, language), most reliable first.

Dispatch never scans the whole pool. It asks this index for a shortlist per (skill, language) it
needs, a little longer than the work to hand out, and reads more only if the shortlist runs dry.
Every change to an expert's skills, languages or reliability refreshes that expert's rows; status
is not in the index but checked live, so pausing or banning takes effect at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import delete, func, insert, literal, select, union_all
from sqlalchemy.orm import Session

from nightshift.platform.models import Assignment, Expert, ExpertLanguage, ExpertRoute, ExpertSkill
from nightshift.platform.sql import matches_any

ANY_SKILL = "*"


def refresh_routes(session: Session, expert_ids: Sequence[int] | None = None) -> None:
    """Rebuild the routes of these experts (all experts if None), set-based."""
    scoped = expert_ids is not None
    if scoped and not expert_ids:
        return
    ids = list(expert_ids or [])
    clear = delete(ExpertRoute)
    if scoped:
        clear = clear.where(matches_any(session, ExpertRoute.expert_id, ids))
    session.execute(clear)
    by_skill = (
        select(ExpertSkill.skill, ExpertLanguage.language, Expert.id, Expert.reliability, ExpertSkill.level)
        .join(ExpertSkill, ExpertSkill.expert_id == Expert.id)
        .join(ExpertLanguage, ExpertLanguage.expert_id == Expert.id)
    )
    any_skill = select(literal(ANY_SKILL), ExpertLanguage.language, Expert.id, Expert.reliability, literal(0)).join(
        ExpertLanguage, ExpertLanguage.expert_id == Expert.id
    )
    if scoped:
        by_skill = by_skill.where(matches_any(session, Expert.id, ids))
        any_skill = any_skill.where(matches_any(session, Expert.id, ids))
    columns = ["skill", "language", "expert_id", "reliability", "level"]
    session.execute(insert(ExpertRoute).from_select(columns, union_all(by_skill, any_skill)))


class Candidate(NamedTuple):
    """A named tuple: dispatch builds hundreds of thousands of these per plan."""

    expert_id: int
    timezone: str
    work_start_hour: int
    work_hours: int
    reliability: float
    capacity: int
    hourly_rate: float
    load: int


def shortlist(
    session: Session,
    skill: str,
    language: str,
    extra_skills: Sequence[str],
    limit: int,
    offset: int = 0,
    min_level: int = 0,
) -> list[Candidate]:
    """Up to `limit` active experts for (skill, language), most reliable first, with their open load.

    extra_skills: further skills every candidate must also hold (a project may require several);
    min_level: the level (granted by the skill's exam) every one of those skills must be held at.
    Experts already at capacity are included (the caller skips them) so paging stays stable.
    """
    # The expert's status is checked here, live: a route row may lag a status change, never lead it.
    best = (
        select(
            Expert.id,
            Expert.timezone,
            Expert.work_start_hour,
            Expert.work_hours,
            Expert.reliability,
            Expert.capacity,
            Expert.hourly_rate,
        )
        .join(ExpertRoute, ExpertRoute.expert_id == Expert.id)
        .where(
            ExpertRoute.skill == skill,
            ExpertRoute.language == language,
            Expert.status == "active",
            ExpertRoute.level >= min_level,
        )
        .order_by(ExpertRoute.reliability.desc(), ExpertRoute.expert_id.desc())
    )
    if extra_skills:
        holds_all = (
            select(func.count())
            .where(
                ExpertSkill.expert_id == ExpertRoute.expert_id,
                ExpertSkill.skill.in_(list(extra_skills)),
                ExpertSkill.level >= min_level,
            )
            .scalar_subquery()
        )
        best = best.where(holds_all == len(set(extra_skills)))
    rows = session.execute(best.limit(limit).offset(offset))
    found = [(eid, tz, start, hours, rel, cap, float(rate)) for eid, tz, start, hours, rel, cap, rate in rows]
    loads = open_loads(session, [row[0] for row in found])
    return [Candidate(*row, load=loads.get(row[0], 0)) for row in found]


_SHORTLISTS_SQL = """
SELECT w.route, c.id, c.timezone, c.work_start_hour, c.work_hours, c.reliability, c.capacity,
       c.hourly_rate::float8,
       (SELECT count(*) FROM assignments a WHERE a.open_expert_id = c.id)
FROM unnest(%(skills)s::text[], %(languages)s::text[], %(limits)s::int[], %(offsets)s::int[])
     WITH ORDINALITY AS w(skill, language, lim, off, route)
CROSS JOIN LATERAL (
    SELECT x.id, x.timezone, x.work_start_hour, x.work_hours, x.reliability, x.capacity, x.hourly_rate
    FROM expert_routes r JOIN experts x ON x.id = r.expert_id
    WHERE r.skill = w.skill AND r.language = w.language AND x.status = 'active' {route_level}
      AND NOT EXISTS (
          SELECT 1 FROM unnest(%(required)s::text[]) AS req(skill)
          WHERE req.skill <> w.skill AND NOT EXISTS (
              SELECT 1 FROM expert_skills s
              WHERE s.expert_id = r.expert_id AND s.skill = req.skill {skill_level}))
    ORDER BY r.reliability DESC, r.expert_id DESC
    LIMIT w.lim OFFSET w.off
) c
"""


def shortlists(
    session: Session, pages: dict[tuple[str, str], tuple[int, int]], required: Sequence[str], min_level: int = 0
) -> dict[tuple[str, str], list[Candidate]]:
    """shortlist() for many (skill, language) routes at once: {route: (limit, offset)} -> candidates.

    Every route but the required skills it names must hold all `required` skills. On PostgreSQL
    one statement (a LATERAL index scan per route) instead of two queries per route.
    """
    found: dict[tuple[str, str], list[Candidate]] = {route: [] for route in pages}
    if not pages:
        return found
    if session.get_bind().dialect.name != "postgresql":
        for (skill, language), (limit, offset) in pages.items():
            extra = [s for s in required if s != skill]
            found[(skill, language)] = shortlist(session, skill, language, extra, limit, offset, min_level)
        return found
    routes = list(pages)
    params = {
        "skills": [r[0] for r in routes],
        "languages": [r[1] for r in routes],
        "limits": [pages[r][0] for r in routes],
        "offsets": [pages[r][1] for r in routes],
        "required": list(required),
        "min_level": min_level,
    }
    raw = session.connection().connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor:
        # Raw driver rows: hundreds of thousands of small tuples, no ORM processing needed.
        # JIT compiling this plan costs more than it saves: the work is many small index scans.
        cursor.execute("SET LOCAL jit = off")
        # The level conditions only where a project asks for a level: without one, nothing to check.
        levels = (
            {"route_level": "AND r.level >= %(min_level)s", "skill_level": "AND s.level >= %(min_level)s"}
            if min_level
            else {"route_level": "", "skill_level": ""}
        )
        cursor.execute(_SHORTLISTS_SQL.format(**levels), params)
        lists = [found[route] for route in routes]
        make = Candidate._make
        for row in cursor.fetchall():
            lists[row[0] - 1].append(make(row[1:]))
    return found


def open_loads(session: Session, expert_ids: list[int]) -> dict[int, int]:
    """Assignments each expert holds and has not submitted yet."""
    if not expert_ids:
        return {}
    rows = session.execute(
        select(Assignment.open_expert_id, func.count())
        .where(matches_any(session, Assignment.open_expert_id, expert_ids))
        .group_by(Assignment.open_expert_id)
    )
    return {eid: n for eid, n in rows if eid is not None}
