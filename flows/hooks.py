"""State hooks shared by every flow: tell ops when a run fails or crashes."""

from __future__ import annotations

from typing import Any

from nightshift import notify
from tasks.runtime import resources


def alert_ops_on_failure(flow: Any, flow_run: Any, state: Any) -> None:
    # Hooks run outside the run context: no run logger here, and nothing may raise.
    res = resources()
    url = f"{res.settings.prefect_ui_url.rstrip('/')}/runs/flow-run/{flow_run.id}"
    error = state.message or state.type.value
    res.notifier.send(res.settings.slack_ops_channel, notify.flow_failed(flow.name, flow_run.name, error, url))


FAILURE_HOOKS: dict[str, Any] = {"on_failure": [alert_ops_on_failure], "on_crashed": [alert_ops_on_failure]}
