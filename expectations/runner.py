"""Runs a list of expectations over a pandas frame and reports the failing rows by id."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Check:
    """One expectation and the reason a failing row is given."""

    expectation: Any
    reason: str


def run_checks(
    name: str, frame: pd.DataFrame, checks: list[Check], id_column: str
) -> tuple[dict[int, str], list[dict[str, Any]]]:
    """Validate; returns (failing id → first reason, one summary per expectation)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GX sets this module's logger to INFO itself and announces a temporary docs folder on every
    # ephemeral context: noise in every flow run.
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_definition = (
        context.data_sources.add_pandas(name)
        .add_dataframe_asset(f"{name}-frame")
        .add_batch_definition_whole_dataframe(f"{name}-all")
    )
    suite = context.suites.add(gx.ExpectationSuite(name=name))
    by_id: dict[str, Check] = {}
    for check in checks:
        added = suite.add_expectation(check.expectation)
        by_id[str(added.id)] = check
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{name}-validation", data=batch_definition, suite=suite)
    )
    result = validation.run(
        batch_parameters={"dataframe": frame},
        result_format={
            "result_format": "COMPLETE",
            "unexpected_index_column_names": [id_column],
            "exclude_unexpected_values": True,
        },
    )
    failures: dict[int, str] = {}
    summaries: list[dict[str, Any]] = []
    # Results do not come back in the order the expectations were added: match them by id.
    for outcome in result.results:
        check = by_id[str(outcome.expectation_config.id)]
        ids: list[int] = []
        for entry in outcome.result.get("unexpected_index_list") or []:
            value = entry.get(id_column) if isinstance(entry, dict) else entry
            ids.extend(int(v) for v in (value if isinstance(value, list) else [value]))
        for row_id in ids:
            failures.setdefault(row_id, check.reason)
        config = outcome.expectation_config
        summaries.append(
            {
                "expectation": config.type,
                "kwargs": {k: v for k, v in config.kwargs.items() if k != "batch_id"},
                "success": bool(outcome.success),
                "reason": check.reason,
                "observed": _plain(outcome.result.get("observed_value")),
                "unexpected_count": int(outcome.result.get("unexpected_count") or 0),
                "failing_ids": sorted(ids)[:1000],
            }
        )
    return failures, summaries


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)
