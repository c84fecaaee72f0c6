"""Training-ready files beside a delivery's records, for a project whose items carry model answers:
SFT conversations, preference pairs for DPO and reward-model scores, in the columns TRL documents
(conversational: lists of {role, content} messages), as Parquet that `datasets.load_dataset` reads
through the delivery's dataset card (delivery.dataset_card).

What each file holds, from an item's final answer (its aggregated labels):
- preference: from a ranking of the responses, every pair it orders (chosen above rejected) with
  the Bradley-Terry margin between them; from a pairwise preference, the preferred of A and B
  (a tie gives no pair);
- sft: the prompt and the best-ranked (or preferred) response;
- reward: each ranked response with its Bradley-Terry score; with a single response, its rating
  or rubric total scaled to 0..1;
- from a chat (the expert's own conversation with a model): a reward row per reply, its rating
  scaled to 0..1 with the conversation before it as the prompt; and the whole conversation as an
  SFT row when every reply is unmarked and rated in the top quarter of the scale (chat.GOOD_REPLY).
Models are named (the client's own endpoints); experts never are.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from nightshift.delivery.records import DELIVERABLE
from nightshift.fields import field_type
from nightshift.fields.chat import GOOD_REPLY
from nightshift.generate.endpoints import endpoint_named, user_turn
from nightshift.generate.responses import Shown, answers_in
from nightshift.ingest.batches import file_checksum
from nightshift.platform.models import Item, ItemResult
from nightshift.projects.spec import Generation, ProjectBody

if TYPE_CHECKING:
    import pyarrow as pa

FOLDER = "training"
KINDS = ("sft", "preference", "reward")


@dataclass
class TrainingRows:
    sft: list[dict[str, Any]] = field(default_factory=list)
    preference: list[dict[str, Any]] = field(default_factory=list)
    reward: list[dict[str, Any]] = field(default_factory=list)


def prompt_messages(payload: dict[str, Any], generation: Generation) -> list[dict[str, str]]:
    """The user's turn as the models were asked it, without an endpoint's own system prompt."""
    return [user_turn(payload, generation)]


def item_rows(
    body: ProjectBody,
    external_id: str,
    payload: dict[str, Any],
    answer: dict[str, Any],
    method: dict[str, Any],
    shown: list[Shown],
    rows: TrainingRows,
) -> None:
    """Add one item's training rows; each label's field type says what its final value orders or scores."""
    if body.generation is None:
        return
    if shown:
        _response_rows(body, body.generation, external_id, payload, answer, method, shown, rows)
    _chat_rows(body, external_id, payload, answer, rows)


def _response_rows(
    body: ProjectBody,
    generation: Generation,
    external_id: str,
    payload: dict[str, Any],
    answer: dict[str, Any],
    method: dict[str, Any],
    shown: list[Shown],
    rows: TrainingRows,
) -> None:
    prompt = prompt_messages(payload, generation)
    by_label = {s.label: s for s in shown}

    def reply(s: Shown) -> list[dict[str, str]]:
        return [{"role": "assistant", "content": s.content}]

    best: Shown | None = None
    for label in body.labels:
        kind, value, how = field_type(label), answer.get(label.name), method.get(label.name) or {}
        pairs = [(a, b, m) for a, b, m in kind.preferences(label, value, how) if a in by_label and b in by_label]
        for chosen, rejected, margin in pairs:
            best = best or by_label[chosen]
            rows.preference.append(
                {
                    "external_id": external_id,
                    "prompt": prompt,
                    "chosen": reply(by_label[chosen]),
                    "rejected": reply(by_label[rejected]),
                    "margin": margin,
                    "chosen_model": by_label[chosen].model,
                    "rejected_model": by_label[rejected].model,
                    "source": label.name,
                }
            )
        scores = {o: s for o, s in kind.response_scores(label, value, how).items() if o in by_label}
        # A single response's rating or rubric total is its score.
        if not scores and len(shown) == 1 and (score := kind.scaled(label, value)) is not None:
            scores = {shown[0].label: score}
        for response_label, score in scores.items():
            rows.reward.append(
                {
                    "external_id": external_id,
                    "prompt": prompt,
                    "completion": reply(by_label[response_label]),
                    "score": score,
                    "model": by_label[response_label].model,
                    "source": label.name,
                }
            )
    if best is not None:
        rows.sft.append({"external_id": external_id, "messages": [*prompt, *reply(best)], "model": best.model})


def _chat_rows(
    body: ProjectBody, external_id: str, payload: dict[str, Any], answer: dict[str, Any], rows: TrainingRows
) -> None:
    generation = body.generation
    assert generation is not None
    for label in body.labels:
        turns = field_type(label).dialogue(label, answer.get(label.name))
        if not turns:
            continue
        model = endpoint_named(generation, getattr(label, "endpoint", None)).model
        # The first message took the item prompt's place, after the item's context.
        messages = prompt_messages({**payload, generation.prompt_field: turns[0][0]}, generation)
        for k, (message, reply, score, _) in enumerate(turns):
            if k:
                messages = [*messages, {"role": "user", "content": message}]
            completion = [{"role": "assistant", "content": reply}]
            rows.reward.append(
                {
                    "external_id": external_id,
                    "prompt": messages,
                    "completion": completion,
                    "score": score,
                    "model": model,
                    "source": label.name,
                }
            )
            messages = [*messages, *completion]
        if all(unmarked and score >= GOOD_REPLY for _, _, score, unmarked in turns):
            rows.sft.append({"external_id": external_id, "messages": messages, "model": model})


def _chunks(session: Session, batch_id: int, size: int) -> Iterator[list[Row[*tuple[Any, ...]]]]:
    after = 0
    while True:
        chunk = list(
            session.execute(
                select(Item.id, Item.external_id, Item.payload, ItemResult.answer, ItemResult.method)
                .join(ItemResult, ItemResult.item_id == Item.id)
                .where(
                    Item.batch_id == batch_id,
                    Item.status.in_(DELIVERABLE),
                    Item.is_gold.is_(False),
                    Item.id > after,
                )
                .order_by(Item.id)
                .limit(size)
            )
        )
        if not chunk:
            return
        yield chunk
        after = chunk[-1][0]


def _schemas() -> dict[str, pa.Schema]:
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    messages = pa.list_(message)
    return {
        "sft": pa.schema([("external_id", pa.string()), ("messages", messages), ("model", pa.string())]),
        "preference": pa.schema(
            [
                ("external_id", pa.string()),
                ("prompt", messages),
                ("chosen", messages),
                ("rejected", messages),
                ("margin", pa.float64()),
                ("chosen_model", pa.string()),
                ("rejected_model", pa.string()),
                ("source", pa.string()),
            ]
        ),
        "reward": pa.schema(
            [
                ("external_id", pa.string()),
                ("prompt", messages),
                ("completion", messages),
                ("score", pa.float64()),
                ("model", pa.string()),
                ("source", pa.string()),
            ]
        ),
    }


def write_training_files(
    session: Session, batch_id: int, body: ProjectBody, folder: Path, chunk_items: int = 2_000
) -> dict[str, dict[str, Any]]:
    """Write folder/training/<kind>.parquet for each kind with rows, a chunk of items at a time;
    returns each written file's entry (name, sha256, format, rows) by kind."""
    if body.generation is None:
        return {}
    import pyarrow as pa
    import pyarrow.parquet as pq

    schemas = _schemas()
    endpoints = [e.name for e in body.generation.endpoints]
    (folder / FOLDER).mkdir(exist_ok=True)
    writers: dict[str, pq.ParquetWriter] = {}
    counts = dict.fromkeys(KINDS, 0)
    try:
        for chunk in _chunks(session, batch_id, chunk_items):
            shown = answers_in(session, chunk[0][0], chunk[-1][0], endpoints)
            rows = TrainingRows()
            for item_id, external_id, payload, answer, method in chunk:
                item_rows(body, external_id, payload or {}, answer or {}, method or {}, shown.get(item_id, []), rows)
            for kind in KINDS:
                batch_rows: list[dict[str, Any]] = getattr(rows, kind)
                if not batch_rows:
                    continue
                if kind not in writers:
                    writers[kind] = pq.ParquetWriter(
                        folder / FOLDER / f"{kind}.parquet", schemas[kind], compression="zstd"
                    )
                writers[kind].write_table(pa.Table.from_pylist(batch_rows, schema=schemas[kind]))
                counts[kind] += len(batch_rows)
    finally:
        for writer in writers.values():
            writer.close()
    return {
        kind: {
            "name": f"{FOLDER}/{kind}.parquet",
            "sha256": file_checksum(folder / FOLDER / f"{kind}.parquet"),
            "format": "parquet",
            "rows": counts[kind],
        }
        for kind in writers
    }
