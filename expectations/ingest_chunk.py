"""Gate: each chunk of incoming items has unique ids, texts within bounds and allowed languages.

The second layer after row validation: what a client would expect of a whole batch, checked
by Great Expectations over each chunk before it is stored.
"""

from __future__ import annotations

from typing import Any

from expectations.runner import Check, run_checks
from expectations.worker import GateWorker
from nightshift.projects.spec import ProjectBody

GATE = "ingest_chunk"


# The length a missing required text is given: below any min_length (those are never negative).
MISSING = -1


def _length_column(name: str) -> str:
    # Prefixed: an input field may share a name with a column of its own (language does).
    return f"field__{name}__length"


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
        bounds = gxe.ExpectColumnValuesToBeBetween(
            column=_length_column(spec_field.name), min_value=spec_field.min_length, max_value=spec_field.max_length
        )
        reason = f"gate: {spec_field.name} {'missing or ' if spec_field.required else ''}length out of bounds"
        checks.append(Check(bounds, reason))
    return checks


def check_chunk(
    items: dict[str, dict[str, Any]], project: ProjectBody, worker: GateWorker | None = None
) -> dict[str, str]:
    """external_id → reason, for the items of a prepared chunk that fail the suite. With a worker,
    the suite runs in its process and only the ids, languages and lengths are sent there."""
    if not items:
        return {}
    columns = chunk_columns(items, project)
    if worker is None:
        return check_columns(columns, project)
    return worker.call(check_columns, columns, project)


def chunk_columns(items: dict[str, dict[str, Any]], project: ProjectBody) -> dict[str, list[Any]]:
    """What the suite looks at: ids, languages and, per text field, its length (not the text)."""
    values = list(items.values())
    columns: dict[str, list[Any]] = {"external_id": list(items), "language": [v["language"] for v in values]}
    for spec_field in project.input_fields:
        if spec_field.type != "text":
            continue
        # A required field that is missing gets a length below any bound, so one expectation per
        # field checks presence and length (GX's cost is per expectation per chunk, whatever its
        # size); an optional one that is missing is null, which GX leaves alone.
        absent = MISSING if spec_field.required else None
        name = spec_field.name
        columns[_length_column(name)] = [
            absent if (text := v["fields"].get(name)) is None else len(text) for v in values
        ]
    return columns


def check_columns(columns: dict[str, list[Any]], project: ProjectBody) -> dict[str, str]:
    import pandas as pd

    checked = run_checks(GATE, pd.DataFrame(columns), build_checks(project), "external_id")
    return {str(k): v for k, v in checked.failures.items()}
