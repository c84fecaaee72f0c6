"""Commands for generation: have a project's models answer a batch, or serve the local model."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import BatchOption, JsonFlag, emit, prefect_api, require_batch


def generate(
    batch: BatchOption,
    endpoint: Annotated[list[str] | None, typer.Option(help="Only this endpoint (repeatable).")] = None,
    force: Annotated[bool, typer.Option(help="Ask again for items already answered (a new take).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Have the project's models answer the batch's prompts; failures are stored and asked again next run."""
    api_ready = prefect_api()
    require_batch(batch)
    from flows.generate import GenerateParams, generate_flow

    with api_ready():
        result = generate_flow(GenerateParams(batch_id=batch, endpoints=endpoint or None, force=force))
    lines = [
        f"batch {batch}: {e.endpoint}: asked {e.asked}, answered {e.answered}, failed {e.failed}"
        + (f" ({', '.join(f'{k}: {n}' for k, n in sorted(e.errors.items()))})" if e.errors else "")
        + f"; items answered {e.items_answered}, failed {e.items_failed}"
        for e in result.endpoints
    ] or [f"batch {batch}: project {result.project} has no model endpoints"]
    emit(result, as_json, lines)


def model_server(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8088,
    delay_ms: Annotated[int, typer.Option(min=0, max=60_000, help="Each answer's latency.")] = 0,
) -> None:
    """The local model server (OpenAI-compatible, deterministic answers with known faults): base URL
    http://127.0.0.1:PORT/v1 for a project's endpoint."""
    from app.model_server import serve

    typer.echo(f"model server on http://127.0.0.1:{port}/v1")
    serve(port=port, delay_seconds=delay_ms / 1000)
