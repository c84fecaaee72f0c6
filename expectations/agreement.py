"""Gate: experts agree enough, per item and per field.

Two suites. Per item: the share of experts agreeing with the final answer at or above the spec's
min_agreement, and every compared field settled (a clear majority, and for a field with a fixed
set of answers enough quality-weighted confidence: review.aggregate). Failing rows are item ids;
the review flow asks for one more expert, or an adjudicator at the cap. Per field: Krippendorff's
alpha at or above min_alpha, the batch's health, reported with the gate; a low alpha does not
send items anywhere (an item goes on because of its own votes, not the batch's).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from expectations.runner import Check, run_checks
from nightshift.projects.spec import ProjectBody
from nightshift.review.gates import GateOutcome

GATE = "agreement"


def check_agreement(
    items: list[dict[str, Any]],
    alphas: dict[str, float | None],
    project: ProjectBody,
    docs_dir: Path | None = None,
) -> GateOutcome:
    """items: item_id, agreement and unsettled_fields (review.aggregate)."""
    import great_expectations.expectations as gxe
    import pandas as pd

    gates = project.gates
    thresholds: dict[str, Any] = {
        "min_agreement": gates.min_agreement,
        "min_alpha": gates.min_alpha,
        "min_confidence": gates.min_confidence,
        "alpha": alphas,
    }
    if not items:
        return GateOutcome(GATE, [], {}, thresholds, [])
    by_field = run_checks(
        f"{GATE}-fields",
        pd.DataFrame({"field": list(alphas), "alpha": pd.Series(list(alphas.values()), dtype=float)}),
        [
            Check(
                # An alpha that cannot be measured (no disagreement possible) is null and not judged.
                gxe.ExpectColumnValuesToBeBetween(column="alpha", min_value=gates.min_alpha),
                f"Krippendorff's alpha under {gates.min_alpha}",
            )
        ],
        "field",
        docs_dir,
    )
    by_item = run_checks(
        f"{GATE}-items",
        pd.DataFrame(
            {
                "item_id": [i["item_id"] for i in items],
                "agreement": [i["agreement"] for i in items],
                "settled": [not i.get("unsettled_fields") for i in items],
            }
        ),
        [
            Check(
                gxe.ExpectColumnValuesToBeBetween(column="agreement", min_value=gates.min_agreement),
                f"experts disagree (agreement under {gates.min_agreement})",
            ),
            Check(
                gxe.ExpectColumnValuesToBeInSet(column="settled", value_set=[True]),
                f"no clear majority, or confidence under {gates.min_confidence}",
            ),
        ],
        "item_id",
        docs_dir,
    )
    failures: dict[int, str] = {int(k): v for k, v in by_item.failures.items()}
    return GateOutcome(
        GATE,
        [i["item_id"] for i in items],
        failures,
        thresholds,
        by_field.summaries + by_item.summaries,
        by_item.docs_url,
    )
