"""Gate: one final answer per item, every item accounted for, no expert personal data."""

from __future__ import annotations

from typing import Any

from expectations.runner import Check, run_checks
from nightshift.review import GateOutcome

GATE = "delivery_readiness"
# What a delivered record may carry; anything else (an expert's name or email) is a leak.
ALLOWED_COLUMNS = ["item_id", "external_id", "input_hash", "answer", "method", "agreement", "lineage"]


def check_delivery_readiness(records: list[dict[str, Any]], expected_item_ids: list[int]) -> GateOutcome:
    import great_expectations.expectations as gxe
    import pandas as pd

    thresholds = {"expected_items": len(expected_item_ids)}
    frame = pd.DataFrame.from_records(records, columns=None if records else ALLOWED_COLUMNS)
    checks = [
        Check(
            gxe.ExpectTableColumnsToMatchSet(column_set=ALLOWED_COLUMNS, exact_match=True),
            "record carries fields outside the delivery schema",
        ),
        Check(gxe.ExpectColumnValuesToBeUnique(column="item_id"), "more than one final answer"),
        Check(gxe.ExpectColumnValuesToNotBeNull(column="answer"), "no final answer"),
        Check(
            gxe.ExpectColumnValuesToBeInSet(column="item_id", value_set=expected_item_ids),
            "item is not a passed item of this batch",
        ),
        Check(gxe.ExpectTableRowCountToEqual(value=len(expected_item_ids)), "items missing from the delivery"),
    ]
    failures, summaries = run_checks(GATE, frame, checks, "item_id")
    # Table-level failures name no row; they still fail the gate as a whole.
    for summary in summaries:
        if not summary["success"] and not summary["failing_ids"]:
            failures.setdefault(0, summary["reason"])
    ids = [int(r["item_id"]) for r in records]
    return GateOutcome(GATE, ids, failures, thresholds, summaries)
