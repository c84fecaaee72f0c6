"""Span marking: stretches of the models' answers, each tagged with an error type and a note.

An answer is a list of {"response": "A", "start": 10, "end": 42, "type": "factual_error",
"note": "…"}: character offsets into the response's text, end exclusive. Several experts' spans
are matched by overlap (the same response, overlapping by at least half of the shorter one): a
group of matched spans that experts holding most of the weight marked is a final span, with the
type most of its weight gave it and the median bounds of its members.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from nightshift.fields.alpha import alpha
from nightshift.fields.base import AnswerContext, Answers, Ballot, ColumnCheck, FieldResult, FieldType
from nightshift.projects.spec import Spans

KEYS = {"response", "start", "end", "type", "note"}
MAX_OFFSET = 1_000_000
# What a matched pair of spans must share: this much of the shorter one.
MIN_OVERLAP = 0.5
MIN_WEIGHT = 0.05
# A span sent by the workbench's form, as JSON text: a few hundred bytes and its note.
MAX_FORM_VALUE = 8_000


@dataclass(frozen=True)
class Span:
    response: str
    start: int
    end: int
    type: str

    def overlaps(self, other: Span) -> bool:
        if self.response != other.response:
            return False
        shared = min(self.end, other.end) - max(self.start, other.start)
        return shared > 0 and shared >= MIN_OVERLAP * min(self.end - self.start, other.end - other.start)


def spans_of(value: Any) -> list[Span]:
    """The spans of a valid answer (answer_error is None)."""
    return [Span(s["response"], s["start"], s["end"], s["type"]) for s in value or []]


def _span_error(label: Spans, span: Any) -> str | None:
    if not isinstance(span, dict) or not {"response", "start", "end", "type"} <= set(span) <= KEYS:
        return "each span needs response, start, end and type (and may have a note)"
    response, start, end = span["response"], span["start"], span["end"]
    if not isinstance(response, str) or len(response) != 1 or not "A" <= response <= "Z":
        return "a span's response is a letter: A, B, …"
    if any(not isinstance(n, int) or isinstance(n, bool) for n in (start, end)) or not 0 <= start < end <= MAX_OFFSET:
        return "a span runs from start to a greater end, in characters"
    if span["type"] not in label.error_types:
        return f"a span's type is one of {label.error_types}"
    note = span.get("note", "")
    if not isinstance(note, str) or len(note) > label.max_note_chars:
        return f"a span's note is text of at most {label.max_note_chars} characters"
    return None


def match_groups(marked: Sequence[tuple[int, Span]]) -> list[list[tuple[int, Span]]]:
    """(voter, span) pairs grouped by overlap: a span joins the first group holding a span it
    overlaps, in order of start; each voter counts once per group."""
    groups: list[list[tuple[int, Span]]] = []
    for voter, span in sorted(marked, key=lambda m: (m[1].response, m[1].start, m[1].end)):
        for group in groups:
            if any(span.overlaps(other) for _, other in group) and all(v != voter for v, _ in group):
                group.append((voter, span))
                break
        else:
            groups.append([(voter, span)])
    return groups


def span_f1(got: Sequence[Span], reference: Sequence[Span]) -> float:
    """How well two span sets agree: F1 of spans matched one to one by overlap and type."""
    if not got and not reference:
        return 1.0
    free = list(reference)
    hits = 0
    for span in got:
        for other in free:
            if span.type == other.type and span.overlaps(other):
                free.remove(other)
                hits += 1
                break
    return 2 * hits / (len(got) + len(reference))


class SpansField(FieldType[Spans]):
    """Aggregated by matching spans across experts by overlap: a matched group marked by experts
    holding at least half of the item's weight is a final span (its type by weight, its bounds the
    members' medians). Nominal alpha over the matched groups (each expert's type, or none); agrees
    when the span sets match at F1 0.5 or more."""

    label_class = Spans
    type_name = "spans"
    control = "spans"
    in_item_agreement = False
    comparison_order = 3
    needs_responses = True

    def answer_error(self, label: Spans, value: Any) -> str | None:
        if not isinstance(value, list):
            return "must be a list of spans"
        if len(value) > label.max_spans:
            return f"at most {label.max_spans} spans"
        for span in value:
            if (error := _span_error(label, span)) is not None:
                return error
        return None

    def response_error(self, label: Spans, value: Any, context: AnswerContext) -> str | None:
        lengths = context.response_lengths()
        for span in value or []:
            if span["response"] not in lengths:
                return f"there is no response {span['response']}"
            if span["end"] > lengths[span["response"]]:
                return f"a span runs past the end of response {span['response']}"
        return None

    def from_form(self, values: Sequence[object]) -> Any:
        # One hidden input per span, each holding it as JSON (the workbench's script writes them).
        spans: list[Any] = []
        for raw in values:
            if not isinstance(raw, str) or not raw.strip():
                continue
            try:
                spans.append(orjson.loads(raw[:MAX_FORM_VALUE]))
            except orjson.JSONDecodeError:
                spans.append(raw[:40])  # refused by answer_error, with its reason
        return spans

    def aggregate(
        self, label: Spans, present: list[Any], ranked: Sequence[Ballot], item_id: int, fitted: Any
    ) -> FieldResult:
        voters = [
            (v.expert_id, max(v.reliability, MIN_WEIGHT), spans_of(v.answer[label.name]))
            for v in ranked
            if isinstance(v.answer.get(label.name), list)
        ]
        weight = {voter: w for voter, w, _ in voters}
        total = sum(weight.values())
        groups = match_groups([(voter, span) for voter, _, spans in voters for span in spans])
        final: list[dict[str, Any]] = []
        support: list[float] = []
        for group in groups:
            share = sum(weight[voter] for voter, _ in group) / total if total else 0.0
            if share < 0.5:
                continue
            by_type: dict[str, float] = {}
            for voter, span in group:
                by_type[span.type] = by_type.get(span.type, 0.0) + weight[voter]
            kind = max(label.error_types, key=lambda t: by_type.get(t, 0.0))
            final.append(
                {
                    "response": group[0][1].response,
                    "start": int(statistics.median_low([s.start for _, s in group])),
                    "end": int(statistics.median_high([s.end for _, s in group])),
                    "type": kind,
                }
            )
            support.append(round(share, 4))
        final.sort(key=lambda s: (s["response"], s["start"]))
        method = {
            "method": "overlap_match",
            "groups": len(groups),
            "kept": len(final),
            "support": support,
            "n": len(voters),
        }
        if not voters:
            return FieldResult(None, method)
        agreeing = sum(1 for _, _, spans in voters if span_f1(spans, spans_of(final)) >= 0.5)
        return FieldResult(final, method, agreeing / len(voters))

    def alpha(self, label: Spans, answers: Answers) -> float | None:
        units: list[list[Any]] = []
        for item in answers.values():
            voters = [
                (k, spans_of(a.get(label.name))) for k, a in enumerate(item) if isinstance(a.get(label.name), list)
            ]
            for group in match_groups([(k, span) for k, spans in voters for span in spans]):
                given = {k: span.type for k, span in group}
                units.append([given.get(k, "none") for k, _ in voters])
        return alpha(units, [*label.error_types, "none"], "nominal")

    def matches(self, got: Any, reference: Any) -> bool:
        if not isinstance(got, list) or not isinstance(reference, list):
            return False
        return span_f1(spans_of(got), spans_of(reference)) >= 0.5

    def gold_credit(self, label: Spans, got: Any, reference: Any) -> float:
        if not isinstance(got, list) or self.answer_error(label, got):
            return 0.0
        return span_f1(spans_of(got), spans_of(reference))

    def true_value(self, label: Spans, rng: random.Random) -> Any:
        # Without the answers' text the simulator knows no fault: the truth is "nothing marked".
        return []

    def simulated_value(self, label: Spans, rng: random.Random, truth: Any, correct: bool) -> Any:
        if correct:
            return list(truth)
        if truth:
            # A careless expert misses one of the faults.
            missed = rng.randrange(len(truth))
            return [span for k, span in enumerate(truth) if k != missed]
        # Or marks something that is not one.
        start = rng.randint(0, 20)
        return [
            {"response": "A", "start": start, "end": start + rng.randint(5, 20), "type": rng.choice(label.error_types)}
        ]

    def true_value_from_faults(
        self, label: Spans, faults: Mapping[str, Sequence[tuple[str, int, int]]], drawn: Any
    ) -> Any:
        return [
            {"response": response, "start": start, "end": end, "type": kind}
            for response, found in sorted(faults.items())
            for kind, start, end in found
            if kind in label.error_types
        ][: label.max_spans]

    def gate_values_in(
        self, label: Spans, values: Sequence[Any], lengths: Sequence[Mapping[str, int] | None]
    ) -> list[Any]:
        # How many spans lie outside their response's text (or are no spans at all): none, for a good answer.
        out: list[Any] = []
        for value, known in zip(values, lengths, strict=True):
            if value is None:
                out.append(None)
            elif not isinstance(value, list) or self.answer_error(label, value):
                out.append(-1)
            else:
                known = known or {}
                out.append(sum(1 for s in value if s["end"] > known.get(s["response"], -1)))
        return out

    def gate_checks(self, label: Spans) -> list[ColumnCheck]:
        return [
            ColumnCheck(
                "ExpectColumnValuesToBeBetween",
                label.name,
                f"{label.name}: a span outside its response's text",
                {"min_value": 0, "max_value": 0},
            )
        ]
