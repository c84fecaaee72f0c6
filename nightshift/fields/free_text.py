"""Free text: the expert's own words, min_length to max_length characters once stripped."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np

from nightshift.fields.base import Ballot, ColumnCheck, FieldResult, FieldType
from nightshift.fields.columns import Column, ColumnResults, first_per_item
from nightshift.projects.spec import FreeText, PromptRewrite, _Label


def length_column(name: str) -> str:
    """The gate frame holds each free text's length, not the text: the texts were already compared
    for copies, and a batch's texts made up most of what the suite hashed and measured."""
    return f"{name}__length"


W = TypeVar("W", bound=_Label)


class OwnWordsField(FieldType[W]):
    """An expert's own words (a text, a rewrite, a conversation): not voted on but taken whole, the
    reviewer-approved answer of the most reliable annotator (else the most reliable annotator's);
    no alpha, never compared with gold."""

    measures_alpha = False
    comparison_order = None

    def aggregate(
        self, label: W, present: list[Any], ranked: Sequence[Ballot], item_id: int, fitted: Any
    ) -> FieldResult:
        return best_approved(label.name, present, ranked)

    def aggregate_column(self, label: W, column: Column, fitted: Any) -> ColumnResults | None:
        items = len(column.item_ids)
        approved = np.bincount(column.owners, weights=column.approved, minlength=items).astype(np.int64)
        first_approved = first_per_item(column.owners, column.approved, items)
        values: list[Any] = []
        methods: list[dict[str, Any]] = []
        for start, end, best, reviewed in zip(
            column.starts[:-1].tolist(),
            column.starts[1:].tolist(),
            first_approved.tolist(),
            approved.tolist(),
            strict=True,
        ):
            values.append(column.values[best] if best >= 0 else (column.values[start] if end > start else None))
            methods.append(
                {
                    "method": "reviewer_approved_best" if reviewed else "most_reliable_annotator",
                    "approved": reviewed,
                    "n": end - start,
                }
            )
        return ColumnResults(values, methods, [None] * items, np.ones(items, dtype=bool))

    def matches(self, got: Any, reference: Any) -> bool:
        raise NotImplementedError(f"{self.type_name} is never compared")


class FreeTextField(OwnWordsField[FreeText]):
    """Free text, checked for pasted copies."""

    label_class = FreeText
    type_name = "free_text"
    control = "free_text"
    checked_for_copies = True
    checked_for_echoes = True

    def echo_text(self, label: FreeText, value: Any) -> str | None:
        return value if isinstance(value, str) else None

    def answer_error(self, label: FreeText, value: Any) -> str | None:
        if not isinstance(value, str):
            return "must be text"
        if not label.min_length <= len(value.strip()) <= label.max_length:
            return f"must be {label.min_length} to {label.max_length} characters"
        return None

    def true_value(self, label: FreeText, rng: random.Random) -> Any:
        return simulated_text(rng, label, "A careful answer")

    def simulated_value(self, label: FreeText, rng: random.Random, truth: Any, correct: bool) -> Any:
        # Words only: an expert's text is delivered, so the simulator never writes who they are.
        return simulated_text(rng, label, "Notes")

    def gate_column(self, name: str) -> str:
        return length_column(name)

    def gate_values(self, label: FreeText, values: Sequence[Any]) -> list[Any]:
        # A value that is not text at all gets a length no minimum accepts.
        return [len(v.strip()) if isinstance(v, str) else (None if v is None else -1) for v in values]

    def gate_checks(self, label: FreeText) -> list[ColumnCheck]:
        return [
            ColumnCheck(
                "ExpectColumnValuesToBeBetween",
                length_column(label.name),
                f"{label.name} shorter than {label.min_length} characters",
                {"min_value": label.min_length, "max_value": label.max_length},
            )
        ]


def best_approved(name: str, present: list[Any], ranked: Sequence[Ballot]) -> FieldResult:
    """Words are not voted on: the reviewer-approved answer of the most reliable annotator, else
    the most reliable annotator's."""
    approved = [v.answer[name] for v in ranked if v.approved and v.answer.get(name) is not None]
    value = approved[0] if approved else (present[0] if present else None)
    method = {
        "method": "reviewer_approved_best" if approved else "most_reliable_annotator",
        "approved": len(approved),
        "n": len(present),
    }
    return FieldResult(value, method)


def simulated_text(rng: random.Random, label: FreeText | PromptRewrite, lead: str) -> str:
    """Simulated text of about 60 characters (or min_length + 20), words drawn from rng."""
    # Enough words that two experts' texts collide no more often than real ones: the pasted-text
    # check must not flag honest simulated work.
    words = (
        "margin",
        "covenant",
        "liquidity",
        "assumption",
        "scenario",
        "risk",
        "cash flow",
        "tax",
        "leverage",
        "hedge",
        "duration",
        "collateral",
        "forecast",
        "valuation",
        "dividend",
        "yield",
        "exposure",
        "volatility",
        "accrual",
        "depreciation",
        "equity",
        "debt",
        "spread",
        "basis",
        "inflation",
        "currency",
        "audit",
        "reserve",
        "capital",
        "maturity",
        "premium",
        "discount",
    )
    target = max(label.min_length + 20, 60)
    text = lead + ":"
    while len(text) < target:
        text += " " + rng.choice(words)
    return text[: label.max_length]
