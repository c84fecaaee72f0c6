"""Agreement across a project: Krippendorff's alpha per field pooled over its recent finished
batches, and each batch's own alpha in order, so ops see the trend, not one run.

Each batch's alpha is computed over its settled items' accepted annotations under the spec version
the batch was judged by; the pooled alpha over all of them together under the project's current
labels (a field renamed since is left out of the pool). Bounded: the newest batches up to
MAX_BATCHES and MAX_ITEMS items, so a project's years of history never load at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightshift.platform.models import Batch, Item, as_utc
from nightshift.projects.registry import batch_body, project_body
from nightshift.review.agreement import field_alphas
from nightshift.review.settle import accepted_votes

MAX_BATCHES = 20
MAX_ITEMS = 200_000
FINISHED = ("passed", "delivering", "delivered")


@dataclass(frozen=True)
class BatchAgreement:
    batch_id: int
    created_at: dt.datetime
    items: int
    alphas: dict[str, float | None]


@dataclass
class ProjectAgreement:
    batches: list[BatchAgreement] = field(default_factory=list)
    pooled: dict[str, float | None] = field(default_factory=dict)
    items: int = 0

    def lowest(self) -> tuple[str, float] | None:
        """The pooled field with the lowest measurable alpha."""
        measured = [(name, a) for name, a in self.pooled.items() if a is not None]
        return min(measured, key=lambda f: f[1]) if measured else None


def project_agreement(
    session: Session, project_id: int, max_batches: int = MAX_BATCHES, max_items: int = MAX_ITEMS
) -> ProjectAgreement:
    """Alpha per field for each of the project's newest finished batches (oldest first) and pooled."""
    batches = session.execute(
        select(Batch.id, Batch.created_at)
        .where(Batch.project_id == project_id, Batch.status.in_(FINISHED), Batch.purged_at.is_(None))
        .order_by(Batch.id.desc())
        .limit(max_batches)
    ).all()
    found = ProjectAgreement()
    pooled: dict[int, list[Mapping[str, Any]]] = {}
    for batch_id, created_at in batches:
        room = max_items - found.items
        if room <= 0:
            break
        item_ids = list(
            session.scalars(
                select(Item.id)
                .where(Item.batch_id == batch_id, Item.status.in_(("passed", "delivered")), Item.is_gold.is_(False))
                .order_by(Item.id)
                .limit(room)
            )
        )
        answers = {i: [v.answer for v in votes] for i, votes in accepted_votes(session, item_ids).items()}
        found.batches.append(
            BatchAgreement(
                batch_id, as_utc(created_at), len(item_ids), field_alphas(answers, batch_body(session, batch_id))
            )
        )
        found.items += len(item_ids)
        pooled.update(answers)
    found.batches.reverse()
    found.pooled = field_alphas(pooled, project_body(session, project_id)) if pooled else {}
    return found
