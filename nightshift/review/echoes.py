"""Low-effort words: an expert's text (a rationale, an improved prompt, a rewrite) that is the item's
own input or a model's answer with trivial edits. Identical texts across experts are
review.agreement's pasted_texts; this compares each text with what the expert was shown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rapidfuzz import fuzz, utils
from sqlalchemy import select
from sqlalchemy.orm import Session

from nightshift.fields import field_type
from nightshift.generate.responses import answers_in
from nightshift.platform.models import Item
from nightshift.platform.sql import matches_any
from nightshift.projects.spec import ProjectBody

# What an expert was shown of an item, by where it came from ("prompt", "Response A", …).
Shown = Sequence[tuple[str, str]]


def echo_checked(project: ProjectBody) -> bool:
    return project.gates.max_echo_similarity < 1 and any(field_type(lab).checked_for_echoes for lab in project.labels)


def shown_texts(session: Session, item_ids: Sequence[int], project: ProjectBody) -> dict[int, list[tuple[str, str]]]:
    """Each item's text input fields and its model answers: what an expert's words may not repeat."""
    ids = sorted(set(item_ids))
    if not ids or not echo_checked(project):
        return {}
    names = [f.name for f in project.input_fields if f.type == "text"]
    shown: dict[int, list[tuple[str, str]]] = {item_id: [] for item_id in ids}
    if names:
        query = select(Item.id, *(Item.payload[name].as_string() for name in names)).where(
            matches_any(session, Item.id, ids)
        )
        for item_id, *texts in session.execute(query):
            shown[item_id] += [(name, text) for name, text in zip(names, texts, strict=True) if text]
    if project.generation is not None:
        endpoints = [e.name for e in project.generation.endpoints]
        for item_id, answers in answers_in(session, ids[0], ids[-1], endpoints).items():
            if item_id in shown:
                shown[item_id] += [(f"Response {a.label}", a.content) for a in answers if a.content]
    return shown


def echoed_texts(rows: Sequence[Mapping[str, Any]], shown: Mapping[int, Shown], project: ProjectBody) -> dict[int, str]:
    """Submissions with a text at least gates.max_echo_similarity alike (rapidfuzz's normalised
    Indel similarity, case and punctuation ignored) to something its item showed: submission id →
    which field echoes what. Texts under gates.min_copied_text_length are never flagged."""
    if not shown:
        return {}
    similarity = project.gates.max_echo_similarity
    min_length = project.gates.min_copied_text_length
    readers = [(label, kind) for label in project.labels if (kind := field_type(label)).checked_for_echoes]
    # Each item's texts normalised once, however many experts' words are compared with them.
    normalised: dict[int, list[tuple[str, str]]] = {}
    flagged: dict[int, str] = {}
    for row in rows:
        item_id = int(row["item_id"])
        sources = normalised.get(item_id)
        if sources is None:
            sources = normalised[item_id] = [
                (where, utils.default_process(text)) for where, text in shown.get(item_id, ())
            ]
        for label, kind in readers:
            text = kind.echo_text(label, row["answer"].get(label.name))
            if text is None or len(text.strip()) < min_length:
                continue
            words = utils.default_process(text)
            for where, original in sources:
                # The Indel similarity is at most 1 - |a - b| / (a + b): texts of lengths that far
                # apart cannot reach it, and nearly every pair is skipped here.
                if abs(len(words) - len(original)) > (1 - similarity) * (len(words) + len(original)):
                    continue
                if fuzz.ratio(words, original, score_cutoff=similarity * 100):
                    flagged[int(row["submission_id"])] = f"{label.name} repeats the item's {where}"
                    break
            if int(row["submission_id"]) in flagged:
                break
    return flagged
