"""Commands for review: gate and aggregate a batch, or aggregate a finished one again."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import BatchOption, JsonFlag, emit, prefect_api, ready_sessions, require_batch
from app.cli.deliver import deliver
from nightshift.platform.errors import NightshiftError


def review(batch: BatchOption, as_json: JsonFlag = False) -> None:
    """Gate and aggregate a batch's submissions."""
    api_ready = prefect_api()
    require_batch(batch)
    from flows.review import ReviewParams, review_flow

    with api_ready():
        result = review_flow(ReviewParams(batch_id=batch))
    emit(
        result,
        as_json,
        [
            f"batch {batch}: gated {result.gated} submissions, rejected {result.rejected}; "
            f"{result.passed_items} items passed, {result.rework_items} back for rework, "
            f"{result.more_overlap_items} need one more expert; batch is {result.batch_status}",
        ],
    )


def reaggregate(batch: BatchOption, as_json: JsonFlag = False) -> None:
    """Aggregate a finished batch again with today's reliabilities; changes go out as a new version."""
    api_ready = prefect_api()
    from nightshift.platform.db import transaction
    from nightshift.review.settle import reaggregate_batch

    require_batch(batch)
    with transaction(ready_sessions()) as session:
        changed = reaggregate_batch(session, batch, "cli")
    typer.echo(f"batch {batch}: {changed} final answers changed")
    if changed:
        with api_ready():
            deliver(batch, as_json)


def agreement(
    project: Annotated[str, typer.Option("--project", "-p", help="The project (slug).")],
    batches: Annotated[int, typer.Option(min=1, max=200, help="Its newest finished batches.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Krippendorff's alpha per field pooled over the project's recent batches, and each batch's own."""
    from sqlalchemy import select

    from nightshift.platform.models import Project
    from nightshift.review.project_agreement import project_agreement

    with ready_sessions()() as session:
        project_id = session.scalar(select(Project.id).where(Project.slug == project))
        if project_id is None:
            raise NightshiftError(f"unknown project {project}")
        found = project_agreement(session, project_id, max_batches=batches)

    def shown(alphas: dict[str, float | None]) -> str:
        return ", ".join(f"{name} {'-' if a is None else f'{a:.3f}'}" for name, a in alphas.items()) or "nothing yet"

    lines = [f"project {project}, {len(found.batches)} batches, {found.items:,} items: {shown(found.pooled)}"] + [
        f"  batch {b.batch_id} ({b.created_at:%Y-%m-%d}, {b.items:,} items): {shown(b.alphas)}" for b in found.batches
    ]
    data = {
        "pooled": found.pooled,
        "items": found.items,
        "batches": [
            {"batch_id": b.batch_id, "created_at": b.created_at.isoformat(), "items": b.items, "alphas": b.alphas}
            for b in found.batches
        ],
    }
    emit(data, as_json, lines)
