"""One review round as the review flow runs it (flows/review.py), through its tasks' core calls
without Prefect: the round cut into parts by item, each part read, gated and aggregated on its
own (review.rounds.review_part), then the batch's experts settled once (review.rounds.settle_experts)
with the task's quality table. The benches time this, not a shortcut the service never takes."""

from __future__ import annotations

import time
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
from nightshift.review.gates import GateTally
from nightshift.review.settle import ReviewReport
from tasks.review import QUALITY_ROWS

# The service's part size unless a bench says otherwise.
PART_SUBMISSIONS: int = Settings.model_fields["review_part_submissions"].default


def review_round(
    sessions: sessionmaker[Session],
    batch_id: int,
    docs: Path | None,
    timings: dict[str, float] | None = None,
    part_submissions: int = PART_SUBMISSIONS,
) -> tuple[GateTally, ReviewReport]:
    """(the submissions gate over every part, the round's report: its parts' items and its experts),
    added up as the review flow adds them up."""
    timings = {} if timings is None else timings
    mark = time.perf_counter()
    with sessions() as session:
        parts = gates.review_parts(session, batch_id, part_submissions)
        copies = gates.round_copies(session, batch_id, batch_body(session, batch_id)) if len(parts) > 1 else None
    timings["parts"] = timings.get("parts", 0.0) + time.perf_counter() - mark
    submissions, items = GateTally("submissions"), ReviewReport()
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
        submissions.merge(done.submissions)
        items.add_items(done.report)
    mark = time.perf_counter()
    with transaction(sessions) as session:
        report = rounds.settle_experts(session, batch_id, partial(check_gold, docs_dir=docs), "bench")
        gates.held_for_review(session, batch_id)
        quality_table(session, batch_id, report.evidence, limit=QUALITY_ROWS)
    timings["experts"] = timings.get("experts", 0.0) + time.perf_counter() - mark
    report.add_items(items)
    return submissions, report
