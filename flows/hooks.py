"""State hooks shared by every flow: tell ops when a run fails or crashes."""

from __future__ import annotations

import logging
from typing import Any

from nightshift.notify import ops_outbox, wording
from nightshift.platform.errors import NightshiftError
from tasks.notify import send_ops_messages_now
from tasks.runtime import resources

log = logging.getLogger(__name__)


def failure_summary(state: Any) -> str:
    """What a message may say of a failed run: our own errors' texts, written for operators, and
    only the class of any other exception, whose text may quote a client's row (a database error
    names the value it refused). The whole error stays in the run's log in Prefect."""
    try:
        exc = state.result(raise_on_failure=False)
    except Exception:
        exc = None
    if isinstance(exc, NightshiftError):
        return str(exc)[:500]
    if isinstance(exc, BaseException):
        return f"{type(exc).__name__} (see the run's log)"
    return str(state.type.value)


def alert_ops_on_failure(flow: Any, flow_run: Any, state: Any) -> None:
    # Hooks run outside the run context: no run logger here, and nothing may raise.
    try:
        res = resources()
        error = failure_summary(state)
        message = wording.run_failed(flow.name, flow_run.name, error, res.settings.prefect_ui_url, flow_run.id)
        ops_outbox.enqueue_now(res.sessions, res.settings.slack_ops_channel, message)
        send_ops_messages_now()
    except Exception:
        # The database itself may be what failed: say it in the log, where the run's error also is.
        log.exception("could not notify ops of the failed run %s", flow_run.name)


FAILURE_HOOKS: dict[str, Any] = {"on_failure": [alert_ops_on_failure], "on_crashed": [alert_ops_on_failure]}
