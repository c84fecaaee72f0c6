"""Gate: experts agree enough, per item and per field.

Two suites: per item, the share of experts agreeing with the final answer at or above the spec's
min_agreement; per field, Krippendorff's alpha at or above min_alpha. An item fails when its own
agreement is low, or when a field whose alpha is low is one its experts disagree on. Failing rows
are item ids; the review flow asks for one more expert or an adjudicator.
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
    """items: item_id, agreement and disagreeing_fields (the fields its experts did not agree on)."""
    import great_expectations.expectations as gxe
    import pandas as pd

    gates = project.gates
    thresholds: dict[str, Any] = {
        "min_agreement": gates.min_agreement,
        "min_alpha": gates.min_alpha,
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
        pd.DataFrame({"item_id": [i["item_id"] for i in items], "agreement": [i["agreement"] for i in items]}),
        [
            Check(
                gxe.ExpectColumnValuesToBeBetween(column="agreement", min_value=gates.min_agreement),
                f"experts disagree (agreement under {gates.min_agreement})",
            )
        ],
        "item_id",
        docs_dir,
    )
    failures: dict[int, str] = {int(k): v for k, v in by_item.failures.items()}
    low_fields = set(by_field.failures)
    for item in items:
        shaky = sorted(low_fields.intersection(item["disagreeing_fields"]))
        if shaky and item["item_id"] not in failures:
            field = shaky[0]
            failures[item["item_id"]] = (
                f"{field}: alpha {alphas[field]} under {gates.min_alpha}, and its experts disagree"
            )
    return GateOutcome(
        GATE,
        [i["item_id"] for i in items],
        failures,
        thresholds,
        by_field.summaries + by_item.summaries,
        by_item.docs_url,
    )
