"""Gate: every submission matches the label schema, has its texts, took a plausible time for what
there was to read, and is the expert's own words (no free text identical to another expert's, none
that repeats the item's input or a model's answer with trivial edits)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from expectations.runner import Check, run_checks
from nightshift.fields import field_type
from nightshift.platform.heap import without_collection
from nightshift.projects.spec import ProjectBody
from nightshift.review.agreement import pasted_texts, plausible_seconds
from nightshift.review.gates import GateOutcome

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
        Check(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="time_on_task_seconds", column_B="plausible_seconds", or_equal=True
            ),
            "too fast for the length of the item",
        ),
        Check(gxe.ExpectColumnValuesToBeNull(column="pasted_field"), "free text identical to another expert's"),
        Check(
            gxe.ExpectColumnValuesToBeNull(column="echoed"),
            "own words that repeat the item's input or a model's answer with trivial edits",
        ),
    ]
    for label in project.labels:
        kind = field_type(label)
        if label.required:
            checks.append(
                Check(gxe.ExpectColumnValuesToNotBeNull(column=kind.gate_column(label.name)), f"{label.name} missing")
            )
        # What the field type expects of its column, as data: the GX expectation by its class name.
        for check in kind.gate_checks(label):
            expectation = getattr(gxe, check.expectation)(column=check.column, **check.options)
            checks.append(Check(expectation, check.reason))
    return checks


@without_collection
def check_submissions(
    rows: list[dict[str, Any]],
    project: ProjectBody,
    docs_dir: Path | None = None,
    copies: Mapping[int, str] | None = None,
) -> GateOutcome:
    """rows: as nightshift.review.submissions_to_gate returns them. copies: the round's copied
    texts (review.gates.round_copies) when these rows are a part of it; else found among the rows."""
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
    pasted = pasted_texts(rows, project) if copies is None else copies
    # Built column by column: a frame from a batch's row dicts cost more than the suite's checks.
    columns: dict[str, list[Any]] = {
        "submission_id": ids,
        "time_on_task_seconds": [r["time_on_task_seconds"] for r in rows],
        "plausible_seconds": [
            plausible_seconds(r.get("item_length", 0), gates.min_time_on_task_seconds, gates.reading_chars_per_second)
            for r in rows
        ],
    }
    answers = [r["answer"] for r in rows]
    for label in project.labels:
        kind = field_type(label)
        values = [a.get(label.name) for a in answers]
        columns[kind.gate_column(label.name)] = (
            kind.gate_values_in(label, values, [r.get("response_lengths") for r in rows])
            if kind.needs_responses
            else kind.gate_values(label, values)
        )
    frame = pd.DataFrame(columns)
    # Object dtype: an all-None column must stay a column of nulls, not become floats.
    frame["pasted_field"] = pd.Series([pasted.get(i) for i in ids], dtype=object)
    # review.gates.add_echoes marks the rows whose words repeat what their item showed.
    frame["echoed"] = pd.Series([r.get("echoed") for r in rows], dtype=object)
    checked = run_checks(GATE, frame, build_checks(project), "submission_id", docs_dir)
    return GateOutcome(GATE, ids, checked.failures, thresholds, checked.summaries, checked.docs_url)
