"""Gate: every submission matches the label schema, has its texts, took a plausible time for what
there was to read, and is the expert's own words (no free text identical to another expert's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from expectations.runner import Check, run_checks
from nightshift.platform.heap import without_collection
from nightshift.projects.spec import FreeText, MultiChoice, OrdinalScale, ProjectBody
from nightshift.review.agreement import pasted_texts, plausible_seconds
from nightshift.review.gates import GateOutcome

GATE = "submissions"


def text_length_column(name: str) -> str:
    """The frame holds each free text's length, not the text: the texts were already compared for
    copies, and 600,000 of them made up most of what the suite hashed and measured."""
    return f"{name}__length"


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
        Check(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="time_on_task_seconds", column_B="plausible_seconds", or_equal=True
            ),
            "too fast for the length of the item",
        ),
        Check(gxe.ExpectColumnValuesToBeNull(column="pasted_field"), "free text identical to another expert's"),
    ]
    for label in project.labels:
        column = label.name
        if label.required:
            present = text_length_column(column) if isinstance(label, FreeText) else column
            checks.append(Check(gxe.ExpectColumnValuesToNotBeNull(column=present), f"{column} missing"))
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
                    gxe.ExpectColumnValuesToBeBetween(
                        column=text_length_column(column), min_value=label.min_length, max_value=label.max_length
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


@without_collection
def check_submissions(rows: list[dict[str, Any]], project: ProjectBody, docs_dir: Path | None = None) -> GateOutcome:
    """rows: as nightshift.review.submissions_to_gate returns them."""
    import pandas as pd

    gates = project.gates
    ids = [int(r["submission_id"]) for r in rows]
    thresholds = {
        "min_time_on_task_seconds": gates.min_time_on_task_seconds,
        "reading_chars_per_second": gates.reading_chars_per_second,
        "min_copied_text_length": gates.min_copied_text_length,
    }
    if not rows:
        return GateOutcome(GATE, [], {}, thresholds, [])
    pasted = pasted_texts(rows, project)
    texts = [label.name for label in project.labels if isinstance(label, FreeText)]
    others = [label.name for label in project.labels if not isinstance(label, FreeText)]
    # Built column by column: a frame from 300,000 row dicts cost more than the suite's checks.
    columns: dict[str, list[Any]] = {
        "submission_id": ids,
        "time_on_task_seconds": [r["time_on_task_seconds"] for r in rows],
        "plausible_seconds": [
            plausible_seconds(r.get("item_length", 0), gates.min_time_on_task_seconds, gates.reading_chars_per_second)
            for r in rows
        ],
    }
    answers = [r["answer"] for r in rows]
    for name in texts:
        # A value that is not text at all gets a length no minimum accepts.
        columns[text_length_column(name)] = [
            len(v.strip()) if isinstance(v, str) else (None if v is None else -1)
            for v in (a.get(name) for a in answers)
        ]
    for name in others:
        columns[name] = [";".join(v) if isinstance(v, list) else v for v in (a.get(name) for a in answers)]
    frame = pd.DataFrame(columns)
    # Object dtype: an all-None column must stay a column of nulls, not become floats.
    frame["pasted_field"] = pd.Series([pasted.get(i) for i in ids], dtype=object)
    checked = run_checks(GATE, frame, build_checks(project), "submission_id", docs_dir)
    return GateOutcome(GATE, ids, checked.failures, thresholds, checked.summaries, checked.docs_url)
