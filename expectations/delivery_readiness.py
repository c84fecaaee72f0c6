"""Gate: one final answer per item, every passed item and nothing else, no field outside the schema.

The suite runs over a slim frame (one row per delivered or expected item, flags instead of the
records), so a batch of 100,000 records is checked without holding them, and the suite itself is
the same for every batch: its expectations carry no batch's ids.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from expectations.runner import Check, run_checks
from nightshift.delivery.records import RECORD_FIELDS
from nightshift.review.gates import GateOutcome

if TYPE_CHECKING:
    from nightshift.delivery.build import BuiltDelivery

GATE = "delivery_readiness"
FLAGS = ["delivered", "expected"]
# What a delivered record may carry; anything else (an expert's name or email) is a leak.
ALLOWED_COLUMNS = [*RECORD_FIELDS, "change"]


def check_delivery_readiness(
    built: BuiltDelivery, expected_item_ids: list[int], docs_dir: Path | None = None
) -> GateOutcome:
    import great_expectations.expectations as gxe
    import pandas as pd

    expected = set(expected_item_ids)
    delivered = set(built.item_ids)
    missing = sorted(expected - delivered)
    answered = set(built.item_ids) - set(built.missing_answer_ids)
    ids = [*built.item_ids, *missing]
    frame = pd.DataFrame(
        {
            "item_id": ids,
            "delivered": [True] * len(built.item_ids) + [False] * len(missing),
            "expected": [i in expected for i in ids],
            "answer": [True if i in answered else None for i in ids],
        }
    )
    # The record's other fields as empty columns: the column-set check sees exactly what was written.
    for column in sorted((built.columns | set(ALLOWED_COLUMNS)) - set(frame.columns)):
        frame[column] = None
    checks = [
        Check(
            gxe.ExpectTableColumnsToMatchSet(column_set=[*ALLOWED_COLUMNS, *FLAGS], exact_match=True),
            "record carries fields outside the delivery schema",
        ),
        Check(gxe.ExpectColumnValuesToBeUnique(column="item_id"), "more than one final answer"),
        Check(gxe.ExpectColumnValuesToBeInSet(column="delivered", value_set=[True]), "item missing from the delivery"),
        Check(gxe.ExpectColumnValuesToNotBeNull(column="answer"), "no final answer"),
        Check(
            gxe.ExpectColumnValuesToBeInSet(column="expected", value_set=[True]),
            "item is not a passed item of this batch",
        ),
    ]
    checked = run_checks(GATE, frame, checks, "item_id", docs_dir)
    failures, summaries = checked.failures, checked.summaries
    # Table-level failures name no row; they still fail the gate as a whole.
    for summary in summaries:
        if not summary["success"] and not summary["failing_ids"]:
            failures.setdefault(0, summary["reason"])
    thresholds = {"expected_items": len(expected), "delivered_items": len(delivered)}
    return GateOutcome(GATE, list(built.item_ids), failures, thresholds, summaries, checked.docs_url)
