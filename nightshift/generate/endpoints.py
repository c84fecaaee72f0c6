"""What a model is asked for an item: its messages, and the key its response is stored under."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from nightshift.projects.spec import Generation, ModelEndpoint


@dataclass(frozen=True)
class Request:
    item_id: int
    take: int
    messages: list[dict[str, str]]


def model_key(generation: Generation, endpoint: ModelEndpoint) -> str:
    """Everything that shapes the answer, hashed: the same item under the same key is one response.
    The URL and the key's whereabouts are left out: the same model moved to another host answers
    the same."""
    shaping = {
        "endpoint": endpoint.name,
        "model": endpoint.model,
        "parameters": endpoint.parameters.model_dump(mode="json", exclude_none=True),
        "system_prompt": endpoint.system_prompt,
        "prompt_field": generation.prompt_field,
        "context_field": generation.context_field,
    }
    canonical = json.dumps(shaping, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def user_turn(payload: dict[str, Any], generation: Generation) -> dict[str, str]:
    """The item's context and prompt as the user's turn."""
    prompt = str(payload.get(generation.prompt_field) or "")
    context = str(payload.get(generation.context_field) or "") if generation.context_field else ""
    return {"role": "user", "content": f"{context}\n\n{prompt}" if context else prompt}


def messages_for(payload: dict[str, Any], generation: Generation, endpoint: ModelEndpoint) -> list[dict[str, str]]:
    """The chat messages for one item: the endpoint's system prompt, then the user's turn."""
    system = [{"role": "system", "content": endpoint.system_prompt}] if endpoint.system_prompt else []
    return [*system, user_turn(payload, generation)]


def endpoint_named(generation: Generation, name: str | None) -> ModelEndpoint:
    """The endpoint a label names (a rewrite's runs, a chat), else the first by name."""
    endpoints = sorted(generation.endpoints, key=lambda e: e.name)
    return next((e for e in endpoints if e.name == name), endpoints[0])


def request_parameters(endpoint: ModelEndpoint) -> dict[str, Any]:
    return endpoint.parameters.model_dump(mode="json", exclude_none=True)
