"""The expert registry: import (add or update), pause, ban, reactivate."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, available_timezones

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import Select, delete, distinct, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from nightshift.experts.routing import refresh_routes
from nightshift.platform.audit import record_transition
from nightshift.platform.errors import NotFoundError, SourceError
from nightshift.platform.models import Expert, ExpertLanguage, ExpertSkill
from nightshift.platform.sql import insert_ignoring_conflicts

# A new expert starts from this prior, not from zero or one.
# The mean of the quality model's prior (review.quality): where a new expert starts.
RELIABILITY_PRIOR = 0.8
_TIMEZONES = available_timezones()


class ExpertRow(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    handle: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    timezone: str
    work_start_hour: int = Field(ge=0, le=23)
    work_hours: int = Field(ge=1, le=24)
    hourly_rate: Decimal = Field(ge=0, le=10_000, decimal_places=2)
    tier: Literal["annotator", "reviewer", "adjudicator"]
    capacity: int = Field(ge=0, le=10_000)
    skills: list[str] = Field(min_length=1)
    languages: list[str] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value not in _TIMEZONES:
            raise ValueError(f"unknown time zone {value!r}")
        ZoneInfo(value)
        return value

    @field_validator("skills", "languages", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        # CSV carries lists as "a;b;c".
        if isinstance(value, str):
            return [part.strip() for part in value.split(";") if part.strip()]
        return value


@dataclass
class ImportReport:
    read: int = 0
    imported: int = 0
    created: int = 0
    errors: list[str] = field(default_factory=list)


def holding_all(skills: Sequence[str], level: int | None = None) -> Select[int]:
    """The ids of experts who hold every one of these skills (at `level` or above, if given)."""
    return (
        select(ExpertSkill.expert_id)
        .where(ExpertSkill.skill.in_(list(skills)), ExpertSkill.level >= (level or 0))
        .group_by(ExpertSkill.expert_id)
        .having(func.count(distinct(ExpertSkill.skill)) == len(set(skills)))
    )


def _rows(path: Path) -> Iterator[tuple[int, Any]]:
    if not path.is_file():
        raise SourceError(f"file not found: {path}")
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            for number, row in enumerate(csv.DictReader(handle), start=2):
                yield number, row
        return
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield number, json.loads(line)
                except json.JSONDecodeError as exc:
                    yield number, f"not valid JSON: {exc.msg}"


def skill_levels(session: Session, expert_id: int) -> dict[str, int]:
    """The skills an expert holds, each at its level (0: claimed, not examined)."""
    return dict(
        session.execute(select(ExpertSkill.skill, ExpertSkill.level).where(ExpertSkill.expert_id == expert_id)).all()
    )


def holds(levels: dict[str, int], skills: Sequence[str], level: int | None) -> bool:
    """Whether skills held at these levels cover every one of `skills` at `level` (unset: any)."""
    return all(levels.get(skill, -1) >= (level or 0) for skill in skills)


def parse_experts(path: Path) -> tuple[list[ExpertRow], list[str]]:
    good: dict[str, ExpertRow] = {}
    errors: list[str] = []
    for number, data in _rows(path):
        if isinstance(data, str):
            errors.append(f"line {number}: {data}")
            continue
        try:
            row = ExpertRow.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            errors.append(f"line {number}: {where}: {first['msg']}")
            continue
        if row.handle in good:
            errors.append(f"line {number}: duplicate handle {row.handle!r}")
            continue
        good[row.handle] = row
    return list(good.values()), errors


# Experts written per statement group: a statement binds at most 65,535 parameters on
# PostgreSQL and 32,766 on SQLite, and an import names each expert in several.
IMPORT_SLICE = 10_000


def import_experts(session: Session, rows: list[ExpertRow]) -> int:
    """Upsert experts and replace their skills and languages; returns how many were new. Any
    number of rows, a slice at a time, in the caller's transaction."""
    return sum(
        _import_slice(session, rows[start : start + IMPORT_SLICE]) for start in range(0, len(rows), IMPORT_SLICE)
    )


def _import_slice(session: Session, rows: list[ExpertRow]) -> int:
    if not rows:
        return 0
    before = set(session.scalars(select(Expert.handle).where(Expert.handle.in_([r.handle for r in rows]))))
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    values = [
        r.model_dump(exclude={"skills", "languages"}) | {"reliability": RELIABILITY_PRIOR, "status": "active"}
        for r in rows
    ]
    for start in range(0, len(values), 2_000):
        stmt = insert(Expert).values(values[start : start + 2_000])
        # Import updates what the file describes; reliability and status belong to Nightshift.
        updatable = (
            "name",
            "email",
            "timezone",
            "work_start_hour",
            "work_hours",
            "hourly_rate",
            "tier",
            "capacity",
        )
        session.execute(
            stmt.on_conflict_do_update(index_elements=["handle"], set_={c: stmt.excluded[c] for c in updatable})
        )
    ids = dict(
        session.execute(select(Expert.handle, Expert.id).where(Expert.handle.in_([r.handle for r in rows]))).all()
    )
    # The file replaces the skills experts claim; a level an exam granted stays until ops revoke it.
    session.execute(delete(ExpertSkill).where(ExpertSkill.expert_id.in_(ids.values()), ExpertSkill.level == 0))
    session.execute(delete(ExpertLanguage).where(ExpertLanguage.expert_id.in_(ids.values())))
    insert_ignoring_conflicts(
        session,
        ExpertSkill,
        [{"expert_id": ids[r.handle], "skill": s} for r in rows for s in set(r.skills)],
        ["expert_id", "skill"],
    )
    insert_ignoring_conflicts(
        session,
        ExpertLanguage,
        [{"expert_id": ids[r.handle], "language": lang} for r in rows for lang in set(r.languages)],
        ["expert_id", "language"],
    )
    refresh_routes(session, list(ids.values()))
    return len(set(ids) - before)


def set_status(session: Session, handle: str, status: Literal["active", "paused", "banned"], actor: str) -> None:
    expert = session.scalars(select(Expert).where(Expert.handle == handle)).one_or_none()
    if expert is None:
        raise NotFoundError(f"unknown expert {handle!r}")
    previous = expert.status
    session.execute(update(Expert).where(Expert.id == expert.id).values(status=status))
    record_transition(session, "expert", expert.id, previous, status, actor)
