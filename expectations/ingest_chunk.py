"""Gate: each chunk of incoming items has unique ids, texts within bounds and allowed languages.

The second layer after row validation: what a client would expect of a whole batch, checked
by Great Expectations over each chunk before it is stored.
"""

from __future__ import annotations

from typing import Any

from expectations.runner import Check, run_checks
from nightshift.spec import ProjectBody

GATE = "ingest_chunk"


def build_checks(project: ProjectBody) -> list[Check]:
    import great_expectations.expectations as gxe

    checks = [
        Check(gxe.ExpectColumnValuesToNotBeNull(column="external_id"), "gate: external_id missing"),
        Check(gxe.ExpectColumnValuesToBeUnique(column="external_id"), "gate: external_id not unique in the chunk"),
        Check(
            gxe.ExpectColumnValuesToBeInSet(column="language", value_set=list(project.languages)),
            "gate: language not allowed",
        ),
    ]
    for spec_field in project.input_fields:
        if spec_field.type != "text":
            continue
        column = f"field__{spec_field.name}__length"
        if spec_field.required:
            checks.append(Check(gxe.ExpectColumnValuesToNotBeNull(column=column), f"gate: {spec_field.name} missing"))
        bounds = gxe.ExpectColumnValuesToBeBetween(
            column=column, min_value=spec_field.min_length, max_value=spec_field.max_length
        )
        checks.append(Check(bounds, f"gate: {spec_field.name} length out of bounds"))
    return checks


def check_chunk(items: dict[str, dict[str, Any]], project: ProjectBody) -> dict[str, str]:
    """external_id → reason, for the items of a prepared chunk that fail the suite."""
    import pandas as pd

    if not items:
        return {}
    text_fields = [f.name for f in project.input_fields if f.type == "text"]
    values = list(items.values())
    columns: dict[str, list[Any]] = {"external_id": list(items), "language": [v["language"] for v in values]}
    for name in text_fields:
        # Prefixed: an input field may share a name with a column above (language does).
        columns[f"field__{name}__length"] = [
            None if (text := v["fields"].get(name)) is None else len(text) for v in values
        ]
    frame = pd.DataFrame(columns)
    checked = run_checks(GATE, frame, build_checks(project), "external_id")
    return {str(k): v for k, v in checked.failures.items()}
