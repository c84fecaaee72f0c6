"""Gate: the project's experts agree enough across its recent batches (review.project_agreement).

One suite over the pooled alpha per field, with the spec's gates.min_project_alpha as the floor.
Like the batch's own alpha, it is the project's health, not a verdict on items: a failure is
recorded against the batch that brought it under the floor and ops are told; nothing is held.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from expectations.runner import Check, run_checks
from nightshift.projects.spec import ProjectBody
from nightshift.review.gates import GateOutcome
from nightshift.review.project_agreement import ProjectAgreement

GATE = "project-agreement"


def check_project_agreement(
    batch_id: int, agreement: ProjectAgreement, project: ProjectBody, docs_dir: Path | None = None
) -> GateOutcome:
    import great_expectations.expectations as gxe
    import pandas as pd

    floor = project.gates.min_project_alpha
    thresholds: dict[str, Any] = {
        "min_project_alpha": floor,
        "pooled_alpha": agreement.pooled,
        "batches": [b.batch_id for b in agreement.batches],
        "items": agreement.items,
    }
    if floor is None or not agreement.pooled:
        return GateOutcome(GATE, [], {}, thresholds, [])
    by_field = run_checks(
        GATE,
        pd.DataFrame(
            {"field": list(agreement.pooled), "alpha": pd.Series(list(agreement.pooled.values()), dtype=float)}
        ),
        [
            Check(
                gxe.ExpectColumnValuesToBeBetween(column="alpha", min_value=floor),
                f"the project's alpha over its last {len(agreement.batches)} batches under {floor}",
            )
        ],
        "field",
        docs_dir,
    )
    failures = {}
    if by_field.failures:
        fields = ", ".join(f"{name} {agreement.pooled[str(name)]:.3f}" for name in sorted(by_field.failures))
        failures[batch_id] = (
            f"the project's alpha over its last {len(agreement.batches)} batches under {floor}: {fields}"
        )
    return GateOutcome(GATE, [batch_id], failures, thresholds, by_field.summaries, by_field.docs_url)
