"""Where tasks get their resources: the composition root's (nightshift.resources), with Prefect's secrets."""

from __future__ import annotations

import time
from typing import Any

from prefect.tasks import exponential_backoff
from sqlalchemy.exc import OperationalError

from expectations.worker import GateWorkerError
from nightshift import resources as root
from nightshift.platform.errors import NightshiftError
from nightshift.platform.outside import EnvSecretResolver
from nightshift.resources import Resources

SECRET_SAVE_ATTEMPTS = 3


class PrefectSecretResolver(EnvSecretResolver):
    """env:NAME from the environment, prefect:NAME from a Prefect Secret block."""

    def resolve(self, ref: str) -> list[str]:
        kind, _, name = ref.partition(":")
        if kind != "prefect":
            return super().resolve(ref)
        from prefect.blocks.system import Secret

        try:
            value = Secret.load(name).get()
        except ValueError:
            raise NightshiftError(f"Prefect Secret {name!r} not found") from None
        return str(value).split()

    def store(self, ref: str, values: list[str]) -> None:
        kind, _, name = ref.partition(":")
        if kind != "prefect":
            super().store(ref, values)
            return
        from prefect.blocks.system import Secret
        from prefect.exceptions import ObjectNotFound

        # Block.save(overwrite=True) is create, then on a conflict read-by-name and update: on a
        # busy API the create can report a conflict the read then cannot find (seen once in CI).
        # Saving again settles it; a persistent failure still raises.
        for attempt in range(SECRET_SAVE_ATTEMPTS):
            try:
                Secret(value=" ".join(values)).save(name, overwrite=True)
                return
            except ObjectNotFound:
                if attempt == SECRET_SAVE_ATTEMPTS - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))


# The task layer supplies its secret resolver to the root; it builds no settings of its own.
root.use_secret_resolver(PrefectSecretResolver)


def resources() -> Resources:
    """The process's one Resources (nightshift.resources.current())."""
    return root.current()


def reset_resources() -> None:
    """Drop the cached resources (tests and the demo switch databases between runs)."""
    root.reset()


def retry_on_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry lost connections, lock timeouts and a lost gate worker; never a bug or bad input."""
    try:
        state.result()
    except (OperationalError, GateWorkerError):
        return True
    except Exception:
        return False
    return False


# Tags whose Prefect concurrency limits are named after what they protect; deployments/limits.py
# sets their sizes on the Prefect API, so every worker on every machine shares the same slots.
# Prefect's task engine takes the slot before the task starts and frees it when the task ends.
DATABASE = "database"
CLIENT_WEBHOOKS = "client-webhooks"
SLACK = "slack"


# Declared once so every database task retries the same way.
DB_TASK: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": exponential_backoff(backoff_factor=2),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_on_transient,
    "tags": [DATABASE],
}


def db_task(*tags: str) -> dict[str, Any]:
    """DB_TASK with further tags, for tasks a tag concurrency limit should hold to."""
    return DB_TASK | {"tags": [DATABASE, *tags]}
