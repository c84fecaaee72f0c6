"""Gate: every submission matches the label schema, has its texts and took a plausible time."""

from __future__ import annotations

from typing import Any

from expectations.runner import Check, run_checks
from nightshift.review import GateOutcome
from nightshift.spec import FreeText, MultiChoice, OrdinalScale, ProjectBody

GATE = "submissions"


def build_checks(project: ProjectBody) -> list[Check]:
    import great_expectations.expectations as gxe

    checks = [
        Check(gxe.ExpectColumnValuesToBeUnique(column="submission_id"), "duplicate submission"),
        Check(
            gxe.ExpectColumnValuesToBeBetween(
                column="time_on_task_seconds", min_value=project.gates.min_time_on_task_seconds
            ),
            f"time on task under {project.gates.min_time_on_task_seconds} s",
        ),
    ]
    for label in project.labels:
        column = label.name
        if label.required:
            checks.append(Check(gxe.ExpectColumnValuesToNotBeNull(column=column), f"{column} missing"))
        if isinstance(label, OrdinalScale):
            checks.append(
                Check(
                    gxe.ExpectColumnValuesToBeBetween(column=column, min_value=label.min, max_value=label.max),
                    f"{column} outside {label.min}..{label.max}",
                )
            )
        elif isinstance(label, FreeText):
            checks.append(
                Check(
                    gxe.ExpectColumnValueLengthsToBeBetween(
                        column=column, min_value=label.min_length, max_value=label.max_length
                    ),
                    f"{column} shorter than {label.min_length} characters",
                )
            )
        elif isinstance(label, MultiChoice):
            options = "|".join(label.options)
            checks.append(
                Check(
                    gxe.ExpectColumnValuesToMatchRegex(
                        column=column, regex=rf"^(?:(?:{options})(?:;(?:{options}))*)?$"
                    ),
                    f"{column} has an unknown option",
                )
            )
        else:
            checks.append(
                Check(
                    gxe.ExpectColumnValuesToBeInSet(column=column, value_set=list(label.options)),
                    f"{column} not one of the options",
                )
            )
    return checks


def check_submissions(rows: list[dict[str, Any]], project: ProjectBody) -> GateOutcome:
    """rows: as nightshift.review.submissions_to_gate returns them."""
    import pandas as pd

    ids = [int(r["submission_id"]) for r in rows]
    thresholds = {"min_time_on_task_seconds": project.gates.min_time_on_task_seconds}
    if not rows:
        return GateOutcome(GATE, [], {}, thresholds, [])
    records = []
    for row in rows:
        record: dict[str, Any] = {
            "submission_id": row["submission_id"],
            "time_on_task_seconds": row["time_on_task_seconds"],
        }
        for label in project.labels:
            value = row["answer"].get(label.name)
            record[label.name] = ";".join(value) if isinstance(value, list) else value
            if isinstance(label, FreeText) and isinstance(value, str):
                record[label.name] = value.strip()
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    failures, summaries = run_checks(GATE, frame, build_checks(project), "submission_id")
    return GateOutcome(GATE, ids, failures, thresholds, summaries)
