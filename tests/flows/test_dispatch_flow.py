"""The dispatch flow on a real Prefect API, under Nightshift's concurrency limits."""

from __future__ import annotations

from sqlalchemy import func, select

from deployments.limits import apply_limits
from flows.dispatch import DispatchParams, dispatch_flow
from nightshift.experts.registry import import_experts, parse_experts
from nightshift.platform.db import make_engine, make_sessionmaker, transaction
from nightshift.platform.models import Assignment, Item
from nightshift.projects.registry import apply_spec
from nightshift.projects.spec import load_spec
from tests.conftest import SAMPLES
from tests.nightshift.ingest.test_ingest import ingest_file


def test_limits_apply_idempotently_and_dispatch_runs_its_shards_under_them(app_env, prefect_api) -> None:
    apply_limits()  # as production runs: the planner and write-shard tag limits exist
    sessions = make_sessionmaker(make_engine(app_env))
    experts, errors = parse_experts(SAMPLES / "experts.jsonl")
    assert not errors
    with transaction(sessions) as session:
        apply_spec(session, load_spec(SAMPLES / "spec.yaml"))
        import_experts(session, experts)
    batch_id, _ = ingest_file(sessions, SAMPLES / "items.jsonl")

    # Shards of 100 assignments: several write tasks, at most two at a time under the limit.
    result = dispatch_flow(DispatchParams(batch_id=batch_id, shard_size=100))
    again = dispatch_flow(DispatchParams(batch_id=batch_id, shard_size=100))

    with sessions() as session:
        total = session.scalar(select(func.count()).select_from(Assignment))
        doubled = session.execute(
            select(Assignment.item_id, Assignment.expert_id)
            .group_by(Assignment.item_id, Assignment.expert_id)
            .having(func.count() > 1)
        ).all()
        statuses = set(session.scalars(select(Item.status)))
        gold = session.scalar(select(func.count()).select_from(Item).where(Item.is_gold))
    # Three experts per item, one per gold item, and the gold mix-in on top.
    assert result.assignments == total > (240 - gold) * 3 + gold
    assert doubled == []
    assert again.assignments == 0
    assert statuses == {"assigned"}
    assert result.expected_cost_usd > 0 and result.projected_finish
