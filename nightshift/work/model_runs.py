"""Runs of a rewritten prompt against one of the project's models, asked from the workbench while
an expert works on a task: at most the project's runs per expert per hour, each kept as a row
(model, prompt, answer or failure, tokens, latency) whether or not the expert's answer cites it.

A run is two steps around the model's answer, so no transaction stays open while the model
thinks: start_run checks the task, the label and the limit and writes the run ('running'),
then finish_run asks the model and stores what came back.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from nightshift.generate.endpoints import messages_for
from nightshift.generate.shared import SharedModels
from nightshift.platform.db import transaction
from nightshift.platform.errors import NightshiftError
from nightshift.platform.models import Expert, Item, ModelRun, utcnow
from nightshift.platform.outside import SecretResolver
from nightshift.projects.spec import ModelEndpoint, PromptRewrite
from nightshift.work.access import locked_open_task, project_of


class RunRefused(NightshiftError):
    """A run that cannot be asked for: not a rewrite label of the task, or a prompt out of bounds."""


class RunLimited(NightshiftError):
    """Over the project's runs per expert per hour."""


@dataclass(frozen=True)
class PendingRun:
    run_id: int
    endpoint: ModelEndpoint
    messages: list[dict[str, str]]


@dataclass(frozen=True)
class RunView:
    run_id: int
    label: str
    endpoint: str
    prompt: str
    status: str
    content: str | None
    latency_ms: int | None
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "label": self.label,
            "endpoint": self.endpoint,
            "prompt": self.prompt,
            "status": self.status,
            "content": self.content,
            "latency_ms": self.latency_ms,
            "error": self.error,
        }


def rewrite_label(labels: list[Any], name: str) -> PromptRewrite:
    for label in labels:
        if label.name == name and isinstance(label, PromptRewrite):
            return label
    raise RunRefused(f"{name[:64]!r} is not a prompt rewrite of this task")


def start_run(
    session: Session, expert_id: int, assignment_id: int, label_name: str, prompt: str, now: dt.datetime | None = None
) -> PendingRun:
    """Check and record a run of the expert's open task; the model is not asked yet."""
    moment = now or utcnow()
    item_id = locked_open_task(session, expert_id, assignment_id, "annotate", "adjudicate")
    _, project = project_of(session, item_id)
    label = rewrite_label(list(project.labels), label_name)
    text = prompt.strip()
    if not label.min_length <= len(text) <= label.max_length:
        raise RunRefused(f"the rewritten prompt must be {label.min_length} to {label.max_length} characters")
    generation = project.generation
    assert generation is not None  # the spec refuses a rewrite label without generation
    endpoints = sorted(generation.endpoints, key=lambda e: e.name)
    endpoint = next((e for e in endpoints if e.name == label.endpoint), endpoints[0])
    # The limit holds under the expert's row lock: two runs asked at once cannot both pass it.
    session.execute(select(Expert.id).where(Expert.id == expert_id).with_for_update())
    used = session.scalar(
        select(func.count())
        .select_from(ModelRun)
        .where(ModelRun.expert_id == expert_id, ModelRun.created_at > moment - dt.timedelta(hours=1))
    )
    if (used or 0) >= generation.runs_per_expert_per_hour:
        raise RunLimited(f"at most {generation.runs_per_expert_per_hour} model runs an hour; try again later")
    payload = session.scalar(select(Item.payload).where(Item.id == item_id)) or {}
    run = ModelRun(
        assignment_id=assignment_id,
        expert_id=expert_id,
        label=label.name,
        endpoint=endpoint.name,
        model=endpoint.model,
        prompt=text,
        status="running",
        created_at=moment,
    )
    session.add(run)
    session.flush()
    return PendingRun(run.id, endpoint, messages_for({**payload, generation.prompt_field: text}, generation, endpoint))


def finish_run(
    sessions: sessionmaker[Session], secrets: SecretResolver, models: SharedModels, pending: PendingRun
) -> RunView:
    """Ask the model and store its answer or why there is none (a failure is data, not an error)."""
    endpoint = pending.endpoint
    api_key = secrets.resolve(endpoint.api_key.as_ref())[0] if endpoint.api_key else None
    answer = models.answer(endpoint, api_key, pending.messages)
    values = {
        "status": "ok" if answer.ok else "failed",
        "content": answer.content,
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "latency_ms": answer.latency_ms,
        "error": answer.error,
    }
    with transaction(sessions) as session:
        session.execute(
            update(ModelRun).where(ModelRun.id == pending.run_id, ModelRun.status == "running").values(values)
        )
        run = session.get_one(ModelRun, pending.run_id)
        return view_of(run)


def run_and_wait(
    sessions: sessionmaker[Session],
    secrets: SecretResolver,
    models: SharedModels,
    expert_id: int,
    assignment_id: int,
    label: str,
    prompt: str,
) -> int | None:
    """A run from start to answer (the simulator's experts); the answered run's id, else None."""
    try:
        with transaction(sessions) as session:
            pending = start_run(session, expert_id, assignment_id, label, prompt)
    except (RunRefused, RunLimited):
        return None
    ran = finish_run(sessions, secrets, models, pending)
    return ran.run_id if ran.status == "ok" else None


def view_of(run: ModelRun) -> RunView:
    return RunView(run.id, run.label, run.endpoint, run.prompt, run.status, run.content, run.latency_ms, run.error)


def runs_of(session: Session, assignment_id: int) -> list[RunView]:
    """The task's runs, oldest first."""
    runs = session.scalars(select(ModelRun).where(ModelRun.assignment_id == assignment_id).order_by(ModelRun.id))
    return [view_of(run) for run in runs]


def run_prompts(session: Session, assignment_id: int) -> dict[int, str]:
    """The task's answered runs by id, with the prompt each ran: what a rewrite answer may cite."""
    rows = session.execute(
        select(ModelRun.id, ModelRun.prompt).where(ModelRun.assignment_id == assignment_id, ModelRun.status == "ok")
    ).tuples()
    return dict(rows.all())
