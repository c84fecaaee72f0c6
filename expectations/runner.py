"""Runs a suite of expectations over a pandas frame and reports the failing rows by id."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nightshift.platform.heap import settle_heap

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Check:
    """One expectation and the reason a failing row is given."""

    expectation: Any
    reason: str


@dataclass
class _Prepared:
    context: Any
    validation: Any
    by_id: dict[str, Check]
    # With a Data Docs site: checkpoints that store each run and render its page (one per result format).
    checkpoints: dict[str, Any]


@dataclass
class CheckResult:
    failures: dict[Any, str]
    summaries: list[dict[str, Any]]
    # The run's page in the Data Docs site, when one was asked for.
    docs_url: str | None = None


DOCS_SITE = "nightshift"
# The bare name, not {"result_format": "BASIC"}: see _run_checkpoint.
BASIC = "BASIC"
# Checkpoints run on a thread of their own (see _run_checkpoint), one per process: a forked child
# inherits the executor but not its thread, and would wait for ever on its first run.
_checkpoint_threads: dict[int, ThreadPoolExecutor] = {}


def _checkpoint_thread() -> ThreadPoolExecutor:
    pid = os.getpid()
    if pid not in _checkpoint_threads:
        _checkpoint_threads.clear()
        _checkpoint_threads[pid] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gx-checkpoint")
    return _checkpoint_threads[pid]


# Building a GX context and suite costs far more than validating a chunk: one per suite and process.
_prepared: dict[str, _Prepared] = {}
_lock = threading.Lock()


def _complete(id_column: str) -> dict[str, Any]:
    return {
        "result_format": "COMPLETE",
        "unexpected_index_column_names": [id_column],
        "exclude_unexpected_values": True,
    }


def _prepare(name: str, checks: list[Check], id_column: str, docs_dir: Path | None) -> _Prepared:
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
        by_id[str(suite.add_expectation(check.expectation).id)] = check
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{name}-validation", data=batch_definition, suite=suite)
    )
    checkpoints: dict[str, Any] = {}
    if docs_dir is not None:
        from great_expectations.checkpoint import UpdateDataDocsAction

        from expectations.docs_views import site_views

        context.add_data_docs_site(
            DOCS_SITE,
            {
                "class_name": "SiteBuilder",
                # One site per suite: a context rebuilding a shared site would drop the others' pages.
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir / name)},
                **site_views(),
            },
        )
        for kind, result_format in (("basic", BASIC), ("complete", _complete(id_column))):
            checkpoints[kind] = context.checkpoints.add(
                gx.Checkpoint(
                    name=f"{name}-{kind}",
                    validation_definitions=[validation],
                    actions=[UpdateDataDocsAction(name="data-docs", site_names=[DOCS_SITE])],
                    result_format=result_format,
                )
            )
    return _Prepared(context, validation, by_id, checkpoints)


def run_checks(
    name: str, frame: pd.DataFrame, checks: list[Check], id_column: str, docs_dir: Path | None = None
) -> CheckResult:
    """Validate; returns each failing id's first reason and one summary per expectation. With
    docs_dir, the run is also rendered into the Data Docs site there."""
    fingerprint = hashlib.sha256(
        repr([(c.expectation.expectation_type, c.expectation.configuration.kwargs, c.reason) for c in checks]).encode()
    ).hexdigest()[:16]
    key = f"{name}-{fingerprint}"
    cache_key = f"{key}-{docs_dir}"
    docs_url: str | None = None
    with _lock:
        prepared = _prepared.get(cache_key)
        if prepared is None:
            prepared = _prepared[cache_key] = _prepare(key, checks, id_column, docs_dir)
            # GX's modules and this context live as long as the process.
            settle_heap()
        # Naming failing rows costs several plain passes; most runs pass, so ask only when needed.
        if prepared.checkpoints:
            # A failing run leaves two pages, the pass/fail one and the one naming the rows (linked).
            identifier, result = _run_checkpoint(prepared.checkpoints["basic"], frame)
            if not result.success:
                identifier, result = _run_checkpoint(prepared.checkpoints["complete"], frame)
            pages = prepared.context.get_docs_sites_urls(resource_identifier=identifier, site_name=DOCS_SITE)
            docs_url = pages[0]["site_url"] if pages else None
        else:
            result = prepared.validation.run(batch_parameters={"dataframe": frame}, result_format=BASIC)
            if not result.success:
                result = prepared.validation.run(
                    batch_parameters={"dataframe": frame}, result_format=_complete(id_column)
                )
    failures: dict[Any, str] = {}
    summaries: list[dict[str, Any]] = []
    # Results do not come back in the order the expectations were added: match them by id.
    for outcome in result.results:
        check = prepared.by_id[str(outcome.expectation_config.id)]
        error = _exception_message(outcome.exception_info) if not outcome.success else None
        if error:
            # A suite that cannot run (a missing column) must fail loudly, never pass quietly.
            raise RuntimeError(f"gate {name}: {outcome.expectation_config.type} could not run: {error}")
        ids: list[Any] = []
        for entry in outcome.result.get("unexpected_index_list") or []:
            value = entry.get(id_column) if isinstance(entry, dict) else entry
            ids.extend(_plain(v) for v in (value if isinstance(value, list) else [value]))
        for row_id in ids:
            failures.setdefault(row_id, check.reason)
        config = outcome.expectation_config
        summaries.append(
            {
                "expectation": config.type,
                "kwargs": {k: _plain(v) for k, v in config.kwargs.items() if k != "batch_id"},
                "success": bool(outcome.success),
                "reason": check.reason,
                "observed": _plain(outcome.result.get("observed_value")),
                "unexpected_count": int(outcome.result.get("unexpected_count") or 0),
                "failing_ids": sorted(ids, key=str)[:1000],
            }
        )
    return CheckResult(failures, summaries, docs_url)


def _run_checkpoint(checkpoint: Any, frame: pd.DataFrame) -> tuple[Any, Any]:
    """(the run's identifier, its validation result)

    On a thread of its own: each run reads its checkpoint back through pydantic, which tries a
    result format as the enum first and keeps the ValueError a dict format raises in a reference
    cycle. That traceback's frames reach their callers' frames, so on the caller's thread a
    review part's rows, answers and votes lived on until the collector's next pass walked them
    all. On this thread the cycle reaches GX's frames only. (A bare format name raises nothing.)"""
    ran = _checkpoint_thread().submit(checkpoint.run, batch_parameters={"dataframe": frame}).result()
    return next(iter(ran.run_results.items()))


def _exception_message(info: Any) -> str | None:
    """GX reports errors either flat or keyed by the metric that raised: find a message in either."""
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception") or info.get("exception_message"):
        return str(info.get("exception_message") or "unknown error")
    for nested in info.values():
        if isinstance(nested, dict) and (nested.get("raised_exception") or nested.get("exception_message")):
            return str(nested.get("exception_message") or "unknown error")
    return None


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()  # numpy scalars
    return str(value)
