"""Runs against one of the project's models, asked from the workbench while an expert works on a
task: a rewritten prompt's run, or a chat's next turn (the expert's message with the conversation
so far). At most the project's runs per expert per hour, each kept as a row (model, prompt, answer
or failure, tokens, latency) whether or not the expert's answer cites it.

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

from nightshift.generate.endpoints import endpoint_named, messages_for
from nightshift.generate.shared import SharedModels
from nightshift.platform.db import transaction
from nightshift.platform.errors import NightshiftError
from nightshift.platform.models import Expert, Item, ModelRun, utcnow
from nightshift.platform.outside import SecretResolver
from nightshift.projects.spec import Chat, ModelEndpoint, ModelInTheLoop, PromptRewrite
from nightshift.work.access import locked_open_task, project_of


class RunRefused(NightshiftError):
    """A run that cannot be asked for: not a rewrite or chat label of the task, a prompt out of
    bounds, a chat at its last turn or still waiting for the model's reply."""


# A chat turn still 'running' after this long is taken as lost (its process died mid-call): it
# no longer holds the conversation's next turn back.
STALE_TURN = dt.timedelta(minutes=10)


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


def run_label(labels: list[Any], name: str) -> ModelInTheLoop:
    for label in labels:
        if label.name == name and isinstance(label, PromptRewrite | Chat):
            return label
    raise RunRefused(f"{name[:64]!r} is not a prompt rewrite or chat of this task")


def conversation(session: Session, assignment_id: int, label: str) -> list[tuple[int, str, str]]:
    """A chat's answered turns so far, oldest first: (run id, the expert's message, the reply)."""
    rows = session.execute(
        select(ModelRun.id, ModelRun.prompt, ModelRun.content)
        .where(ModelRun.assignment_id == assignment_id, ModelRun.label == label, ModelRun.status == "ok")
        .order_by(ModelRun.id)
    )
    return [(run_id, prompt, content or "") for run_id, prompt, content in rows.all()]


def _chat_messages(
    session: Session, assignment_id: int, label: Chat, text: str, moment: dt.datetime
) -> list[tuple[int, str, str]]:
    """The conversation the next turn continues; refused at its last turn, or while the model is
    still answering the turn before (two turns asked at once would both continue the same one:
    the caller holds the expert's row lock, so this check and the new row are one step)."""
    if not text or len(text) > label.max_message_length:
        raise RunRefused(f"a message must be 1 to {label.max_message_length} characters")
    turns = conversation(session, assignment_id, label.name)
    if len(turns) >= label.max_turns:
        raise RunRefused(f"this chat has had its {label.max_turns} turns")
    waiting = session.scalar(
        select(func.count())
        .select_from(ModelRun)
        .where(
            ModelRun.assignment_id == assignment_id,
            ModelRun.label == label.name,
            ModelRun.status == "running",
            ModelRun.created_at > moment - STALE_TURN,
        )
    )
    if waiting:
        raise RunRefused("the model is still answering your last message")
    return turns


def start_run(
    session: Session, expert_id: int, assignment_id: int, label_name: str, prompt: str, now: dt.datetime | None = None
) -> PendingRun:
    """Check and record a run of the expert's open task; the model is not asked yet."""
    moment = now or utcnow()
    item_id = locked_open_task(session, expert_id, assignment_id, "annotate", "adjudicate")
    _, project = project_of(session, item_id)
    label = run_label(list(project.labels), label_name)
    text = prompt.strip()
    if isinstance(label, PromptRewrite) and not label.min_length <= len(text) <= label.max_length:
        raise RunRefused(f"the rewritten prompt must be {label.min_length} to {label.max_length} characters")
    generation = project.generation
    if generation is None:
        # The batch's label asks for runs, but the project's spec no longer names a model.
        raise RunRefused("the project names no model to run this against any more")
    endpoint = endpoint_named(generation, label.endpoint)
    # The limit holds under the expert's row lock: two runs asked at once cannot both pass it.
    session.execute(select(Expert.id).where(Expert.id == expert_id).with_for_update())
    used = session.scalar(
        select(func.count())
        .select_from(ModelRun)
        .where(ModelRun.expert_id == expert_id, ModelRun.created_at > moment - dt.timedelta(hours=1))
    )
    if (used or 0) >= generation.runs_per_expert_per_hour:
        raise RunLimited(f"at most {generation.runs_per_expert_per_hour} model runs an hour; try again later")
    turns = _chat_messages(session, assignment_id, label, text, moment) if isinstance(label, Chat) else []
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
    # A chat's first message takes the item prompt's place; the turns after it follow its reply.
    first = turns[0][1] if turns else text
    messages = messages_for({**payload, generation.prompt_field: first}, generation, endpoint)
    for k, (_, message, reply) in enumerate(turns):
        messages += [*([{"role": "user", "content": message}] if k else []), {"role": "assistant", "content": reply}]
    if turns:
        messages.append({"role": "user", "content": text})
    return PendingRun(run.id, endpoint, messages)


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
) -> tuple[int, str, str] | None:
    """A run (or chat turn) from start to answer (the simulator's experts): the answered run's
    (id, prompt, answer), else None."""
    try:
        with transaction(sessions) as session:
            pending = start_run(session, expert_id, assignment_id, label, prompt)
    except (RunRefused, RunLimited):
        return None
    ran = finish_run(sessions, secrets, models, pending)
    return (ran.run_id, ran.prompt, ran.content or "") if ran.status == "ok" else None


def view_of(run: ModelRun) -> RunView:
    return RunView(run.id, run.label, run.endpoint, run.prompt, run.status, run.content, run.latency_ms, run.error)


def runs_of(session: Session, assignment_id: int) -> list[RunView]:
    """The task's runs, oldest first."""
    runs = session.scalars(select(ModelRun).where(ModelRun.assignment_id == assignment_id).order_by(ModelRun.id))
    return [view_of(run) for run in runs]
