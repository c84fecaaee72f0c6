"""Serve every deployment in prefect.yaml from this process: `uv run python deployments/serve.py`.

Reads prefect.yaml so the served deployments and the declared ones cannot drift apart.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nightshift.resources import prepare_process  # noqa: E402

prepare_process()


def declared_deployments(path: Path = ROOT / "prefect.yaml") -> list[dict[str, Any]]:
    return list(yaml.safe_load(path.read_text())["deployments"])


def load_flow(entrypoint: str) -> Any:
    file, _, name = entrypoint.partition(":")
    module_name = file.removesuffix(".py").replace("/", ".")
    spec = importlib.util.find_spec(module_name)
    if spec is None:
        raise ImportError(f"cannot find {file}")
    return getattr(importlib.import_module(module_name), name)


def build_deployments() -> list[Any]:
    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.events import DeploymentEventTrigger
    from prefect.schedules import Cron

    built = []
    for entry in declared_deployments():
        flow = load_flow(entry["entrypoint"])
        limit = entry.get("concurrency_limit")
        built.append(
            flow.to_deployment(
                name=entry["name"],
                description=entry.get("description"),
                tags=entry.get("tags", []),
                schedules=[
                    Cron(s["cron"], timezone=s["timezone"], active=s.get("active", True))
                    for s in entry.get("schedules", [])
                ],
                concurrency_limit=ConcurrencyLimitConfig(**limit) if limit else None,
                triggers=[DeploymentEventTrigger(**t) for t in entry.get("triggers", [])],
            )
        )
    return built


def main() -> None:
    from prefect import serve

    from deployments.limits import apply_limits

    apply_limits()
    serve(*build_deployments())


if __name__ == "__main__":
    main()
