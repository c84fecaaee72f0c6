"""Experts, their skills and languages, and the routing index dispatch reads."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from nightshift.platform.models.base import EXPERT_STATUSES, TIERS, Base, BigId, Timestamped, sql_in


class Expert(Timestamped, Base):
    __tablename__ = "experts"
    __table_args__ = (
        CheckConstraint(sql_in("tier", TIERS), name="tier"),
        CheckConstraint(sql_in("status", EXPERT_STATUSES), name="status"),
        CheckConstraint("capacity >= 0", name="capacity"),
        CheckConstraint("reliability >= 0 AND reliability <= 1", name="reliability"),
        CheckConstraint("hourly_rate >= 0", name="rate"),
        CheckConstraint("work_start_hour >= 0 AND work_start_hour < 24", name="work_start"),
        CheckConstraint("work_hours > 0 AND work_hours <= 24", name="work_hours"),
        # Dispatch reads these for hundreds of thousands of candidates: from this index alone
        # (PostgreSQL INCLUDE), not from the wide table's pages.
        Index(
            "ix_experts_routing",
            "id",
            postgresql_include=[
                "status",
                "timezone",
                "work_start_hour",
                "work_hours",
                "reliability",
                "capacity",
                "hourly_rate",
            ],
        ),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    handle: Mapped[str] = mapped_column(String(100), unique=True)
    # Personal data: stays inside Nightshift, never in a delivery or a message.
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    timezone: Mapped[str] = mapped_column(String(64))
    work_start_hour: Mapped[int] = mapped_column(Integer)
    work_hours: Mapped[int] = mapped_column(Integer)
    hourly_rate: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    tier: Mapped[str] = mapped_column(String(20))
    capacity: Mapped[int] = mapped_column(Integer)
    reliability: Mapped[float] = mapped_column(Float, default=0.7, server_default="0.7")
    status: Mapped[str] = mapped_column(String(10), default="active", server_default="active")
    # Assignments that expired unsubmitted: counted against the expert's reliability.
    missed_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Submissions flagged as risky (work.signals): counted against reliability, and while above 0
    # every new answer is worth a reviewer's look.
    flagged_submissions: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ExpertSkill(Base):
    __tablename__ = "expert_skills"
    expert_id: Mapped[int] = mapped_column(ForeignKey("experts.id", ondelete="CASCADE"), primary_key=True)
    skill: Mapped[str] = mapped_column(String(64), primary_key=True)
    # 0: claimed by the expert (the registry's file); 1-5: granted by passing the skill's exam.
    level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    __table_args__ = (Index("ix_expert_skills_skill", "skill", "expert_id"),)


class ExpertLanguage(Base):
    __tablename__ = "expert_languages"
    expert_id: Mapped[int] = mapped_column(ForeignKey("experts.id", ondelete="CASCADE"), primary_key=True)
    language: Mapped[str] = mapped_column(String(16), primary_key=True)
    __table_args__ = (Index("ix_expert_languages_language", "language", "expert_id"),)


class ExpertRoute(Base):
    """Routing index: one row per (skill, language) an expert can take, best first.

    Derived from experts, their skills and languages (skill '*' stands for any), and kept in step
    by nightshift.experts.routing whenever those change. It lets dispatch read the few best candidates for
    a skill and language from a pool of millions by one index range scan.
    """

    __tablename__ = "expert_routes"
    skill: Mapped[str] = mapped_column(String(64), primary_key=True)
    language: Mapped[str] = mapped_column(String(16), primary_key=True)
    expert_id: Mapped[int] = mapped_column(ForeignKey("experts.id", ondelete="CASCADE"), primary_key=True)
    reliability: Mapped[float] = mapped_column(Float)
    # The expert's level in the route's skill (expert_skills.level; 0 on the any-skill route).
    level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    __table_args__ = (
        # The level is carried in the index, so a project asking for one filters without the table.
        Index("ix_expert_routes_best", "skill", "language", "reliability", "expert_id", postgresql_include=["level"]),
        Index("ix_expert_routes_expert", "expert_id"),
    )
