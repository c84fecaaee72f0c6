"""One review round as the review flow runs it (flows/review.py), through its tasks' core calls
without Prefect: the round cut into parts by item, each part read, gated and aggregated on its
own (review.rounds.review_part), then the batch's experts settled once (review.rounds.settle_experts)
with the task's quality table. The benches time this, not a shortcut the service never takes."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from expectations.agreement import check_agreement
from expectations.gold import check_gold
from expectations.submissions import check_submissions
from nightshift.platform.db import transaction
from nightshift.platform.heap import collection_paused
from nightshift.platform.settings import Settings
from nightshift.projects.registry import batch_body
from nightshift.reports.experts import quality_table
from nightshift.review import gates, rounds
from tasks.review import QUALITY_ROWS

# The service's part size unless a bench says otherwise.
PART_SUBMISSIONS: int = Settings.model_fields["review_part_submissions"].default


@dataclass
class Round:
    rejected: int = 0
    passed: int = 0
    more_overlap: int = 0
    adjudication: int = 0
    requeued: int = 0
    paused: int = 0
    batch_status: str | None = None


def review_round(
    sessions: sessionmaker[Session],
    batch_id: int,
    docs: Path | None,
    timings: dict[str, float] | None = None,
    part_submissions: int = PART_SUBMISSIONS,
) -> Round:
    timings = {} if timings is None else timings
    mark = time.perf_counter()
    with sessions() as session:
        parts = gates.review_parts(session, batch_id, part_submissions)
        copies = gates.round_copies(session, batch_id, batch_body(session, batch_id)) if len(parts) > 1 else None
    timings["parts"] = timings.get("parts", 0.0) + time.perf_counter() - mark
    found = Round()
    for part in parts:
        # As the flow runs a part: the collector paused while its rows are alive.
        with collection_paused():
            done = rounds.review_part(
                sessions,
                batch_id,
                part,
                copies,
                partial(check_submissions, docs_dir=docs),
                partial(check_agreement, docs_dir=docs),
                timings,
            )
        found.rejected += done.submissions.failed
        found.passed += done.report.passed_items
        found.more_overlap += done.report.more_overlap_items
        found.adjudication += done.report.adjudication_items
    mark = time.perf_counter()
    with transaction(sessions) as session:
        report = rounds.settle_experts(session, batch_id, partial(check_gold, docs_dir=docs), "bench")
        gates.held_for_review(session, batch_id)
        quality_table(session, batch_id, report.evidence, limit=QUALITY_ROWS)
    timings["experts"] = timings.get("experts", 0.0) + time.perf_counter() - mark
    found.requeued, found.paused, found.batch_status = report.requeued_items, report.paused_experts, report.batch_status
    return found
