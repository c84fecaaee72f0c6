"""Expert levels: by the level held in the project's skills and by quality, each level's hourly
rate; the pay run pays time at it, and an expert at no level keeps their own rate."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from nightshift.payouts.earnings import earnings
from nightshift.payouts.ledger import pay_period
from nightshift.payouts.levels import level_of
from nightshift.platform.db import transaction
from nightshift.platform.errors import SpecError
from nightshift.platform.models import Expert, ExpertSkill, PayoutEntry
from nightshift.projects.registry import apply_spec
from nightshift.projects.spec import parse_spec
from tests.nightshift.review.test_appeals import NOW, PERIOD, one_answered_item

LEVELS = [
    {"name": "associate", "min_skill_level": 0, "min_quality": 0.0, "hourly_rate": "90.00"},
    {"name": "certified", "min_skill_level": 1, "min_quality": 0.7, "hourly_rate": "160.00"},
    {"name": "senior", "min_skill_level": 2, "min_quality": 0.85, "hourly_rate": "240.00"},
]


def _with_levels(project, levels=LEVELS):
    data = project.model_dump(mode="json")
    data["project"]["payouts"]["levels"] = levels
    return parse_spec(data)


def test_the_best_paid_level_met_by_skill_and_quality(project) -> None:
    body = _with_levels(project).project
    assert level_of(body, {}, 0.99).name == "associate"  # claimed skills only
    assert level_of(body, {"finance": 1}, 0.9).name == "certified"
    assert level_of(body, {"finance": 2}, 0.8).name == "certified"  # the quality is short of senior
    assert level_of(body, {"finance": 2}, 0.9).name == "senior"
    assert level_of(project.project, {"finance": 2}, 0.9) is None  # no levels: own rates
    with pytest.raises(SpecError, match="own name"):
        _with_levels(project, [LEVELS[0], LEVELS[0]])


def test_the_pay_run_pays_each_experts_level_and_the_rest_their_own_rate(sessions, project, tmp_path) -> None:
    _, experts, _ = one_answered_item(sessions, tmp_path, [5, 5, 5])
    levelled, unlevelled, _ = experts
    body = _with_levels(project, LEVELS[1:])
    with transaction(sessions) as session:
        apply_spec(session, body)
        session.execute(
            update(ExpertSkill).where(ExpertSkill.expert_id == levelled, ExpertSkill.skill == "finance").values(level=2)
        )
        session.execute(update(Expert).where(Expert.id.in_(experts)).values(reliability=0.9))
        pay_period(session, PERIOD, NOW + dt.timedelta(days=30))
        paid = {
            expert: (rate, note)
            for expert, rate, note in session.execute(
                select(PayoutEntry.expert_id, PayoutEntry.rate, PayoutEntry.note).where(PayoutEntry.kind == "time")
            )
        }
        own = session.scalar(select(Expert.hourly_rate).where(Expert.id == unlevelled))
        shown = earnings(session, levelled).levels
    assert paid[levelled] == (Decimal("240.00"), "annotate 600 s on task at level senior")
    # At no level: their own rate, up to the lowest level's (reaching a level never lowers pay).
    assert paid[unlevelled] == (min(own, Decimal("160.00")), "annotate 600 s on task")
    assert shown == [{"project": project.project.name, "level": "senior", "hourly_rate": Decimal("240.00")}]
