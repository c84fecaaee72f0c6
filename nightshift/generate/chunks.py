"""A batch's generation: which endpoints it asks, cut into chunks, and one chunk asked and stored."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from nightshift.generate import responses
from nightshift.generate.client import Answer, OpenAIChatModel
from nightshift.generate.endpoints import Request, messages_for, model_key, request_parameters
from nightshift.generate.run import ChunkReport, ask_all, run_to_end
from nightshift.platform.db import transaction
from nightshift.platform.errors import NightshiftError
from nightshift.platform.models import Batch, Project
from nightshift.platform.outside import SecretResolver
from nightshift.projects.registry import project_body
from nightshift.projects.spec import Generation, ModelEndpoint


@dataclass(frozen=True)
class Plan:
    project: str
    endpoints: list[ModelEndpoint]
    ranges: list[tuple[int, int]]


def generation_of(session: Session, batch_id: int) -> tuple[str, Generation | None]:
    """The batch's project slug and what its spec says to generate."""
    found = session.execute(
        select(Project.slug, Project.id).join(Batch, Batch.project_id == Project.id).where(Batch.id == batch_id)
    ).one_or_none()
    if found is None:
        raise NightshiftError(f"batch {batch_id} not found")
    slug, project_id = found
    return slug, project_body(session, project_id).generation


def plan(session: Session, batch_id: int, chunk_size: int, only: list[str] | None = None) -> Plan:
    slug, generation = generation_of(session, batch_id)
    if generation is None:
        return Plan(slug, [], [])
    endpoints = [e for e in generation.endpoints if only is None or e.name in only]
    unknown = sorted(set(only or []) - {e.name for e in generation.endpoints})
    if unknown:
        raise NightshiftError(f"project {slug} has no model endpoint {unknown[0]!r}")
    return Plan(slug, endpoints, responses.item_ranges(session, batch_id, chunk_size))


def generate_chunk(
    sessions: sessionmaker[Session],
    secrets: SecretResolver,
    batch_id: int,
    endpoint_name: str,
    lo: int,
    hi: int,
    force: bool = False,
) -> ChunkReport:
    """Ask one endpoint for the items of [lo, hi] that need it; every answer or failure is stored.
    A failing endpoint fails no chunk: each failure is a row, asked again by the next run."""
    with sessions() as session:
        _, generation = generation_of(session, batch_id)
        endpoint = _endpoint(generation, endpoint_name)
        assert generation is not None
        key = model_key(generation, endpoint)
        requests = [
            Request(p.item_id, p.take, messages_for(p.payload, generation, endpoint))
            for p in responses.pending(session, batch_id, lo, hi, key, force)
        ]
    if not requests:
        return ChunkReport()
    api_key = secrets.resolve(endpoint.api_key.as_ref())[0] if endpoint.api_key else None
    parameters = request_parameters(endpoint)
    fixed = {"endpoint": endpoint.name, "model": endpoint.model, "model_key": key, "parameters": parameters}

    def row_of(request: Request, answer: Answer) -> dict[str, Any]:
        return fixed | {
            "item_id": request.item_id,
            "take": request.take,
            "status": "ok" if answer.ok else "failed",
            "content": answer.content,
            "finish_reason": answer.finish_reason,
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "latency_ms": answer.latency_ms,
            "error": answer.error,
            "attempts": answer.attempts,
        }

    def write(rows: list[dict[str, Any]]) -> None:
        with transaction(sessions) as session:
            responses.store(session, rows)

    async def run() -> ChunkReport:
        # Connections to spare beyond the requests in flight: a request that starts as the one
        # before it ends need not wait for that one's connection to be handed back.
        model = OpenAIChatModel.for_endpoint(endpoint, api_key, 2 * endpoint.max_concurrent)
        try:
            return await ask_all(model, requests, row_of, write, endpoint.max_concurrent, endpoint.per_minute)
        finally:
            await model.close()

    return run_to_end(run())


def _endpoint(generation: Generation | None, name: str) -> ModelEndpoint:
    for endpoint in generation.endpoints if generation else []:
        if endpoint.name == name:
            return endpoint
    raise NightshiftError(f"no model endpoint {name!r} in the batch's project")
