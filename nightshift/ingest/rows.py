"""Rows of a client file validated against the project's input fields, a chunk at a time; no
database needed."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from nightshift.ingest import privacy
from nightshift.ingest.formats import SourceRow
from nightshift.platform.bounds import clean_text, json_problem, number_problem, text_problem
from nightshift.projects.spec import InputField, ProjectBody

DEFAULT_CHUNK_ROWS = 10_000
# A number written as text longer than this is refused before it is parsed (int() of thousands of
# digits is slow, and no field's value needs more).
MAX_NUMBER_TEXT = 40


@dataclass
class IngestCounts:
    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    quarantined: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    # Personal data found (kind -> count), whatever the project's policy did with it.
    personal_data: Counter[str] = field(default_factory=Counter)

    def add(self, other: IngestCounts) -> None:
        self.read += other.read
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.conflicts += other.conflicts
        self.quarantined += other.quarantined
        self.reasons.update(other.reasons)
        self.problems.extend(other.problems)
        self.personal_data.update(other.personal_data)

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "quarantined": self.quarantined,
            "quarantined_by_reason": dict(self.reasons),
            "problems": list(self.problems),
            "personal_data": dict(self.personal_data),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IngestCounts:
        return cls(
            read=data["read"],
            accepted=data["accepted"],
            duplicates=data["duplicates"],
            conflicts=data["conflicts"],
            quarantined=data["quarantined"],
            reasons=Counter(data["quarantined_by_reason"]),
            problems=list(data["problems"]),
            personal_data=Counter(data.get("personal_data", {})),
        )


@dataclass
class PreparedChunk:
    """Rows ready to store (by external_id) and rows refused, with the counts so far."""

    items: dict[str, dict[str, Any]]
    refused: list[dict[str, Any]]
    counts: IngestCounts


def content_hash(fields: dict[str, Any]) -> str:
    """Of the declared fields only, in canonical JSON: the same content hashes alike in any format."""
    return hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _coerce(spec_field: InputField, value: Any, textual: bool) -> tuple[Any, str | None]:
    """The value as the field's type, or why it is not. CSV text is parsed; JSON must match."""
    name, kind = spec_field.name, spec_field.type
    if kind == "text":
        if not isinstance(value, str):
            return None, f"field {name} must be text"
        if (problem := text_problem(value)) is not None:
            return None, f"field {name} {problem}"
        if not spec_field.min_length <= len(value) <= spec_field.max_length:
            return None, (
                f"field {name} has {len(value)} characters, allowed {spec_field.min_length}..{spec_field.max_length}"
            )
        return value, None
    if textual and isinstance(value, str):
        try:
            if kind in ("integer", "number") and len(value) > MAX_NUMBER_TEXT:
                return None, f"field {name} is a number out of range"
            if kind == "integer":
                value = int(value)
            elif kind == "number":
                value = float(value)
            elif value.lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.lower() in ("true", "1", "yes"), None
        except ValueError:
            pass
        if isinstance(value, str):
            return None, f"field {name} must be {'true or false' if kind == 'boolean' else f'a {kind}'}"
    if kind == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
        return None, f"field {name} must be an integer"
    if kind == "number" and (not isinstance(value, int | float) or isinstance(value, bool)):
        return None, f"field {name} must be a number"
    if kind == "boolean" and not isinstance(value, bool):
        return None, f"field {name} must be true or false"
    if kind in ("integer", "number") and (problem := number_problem(value)) is not None:
        return None, f"field {name} {problem}"
    return value, None


def validate_row(row: SourceRow, project: ProjectBody) -> tuple[dict[str, Any] | None, str | None]:
    """The row's item values, or the reason it is refused."""
    if row.data is None:
        return None, row.error or "unreadable row"
    data = row.data
    external_id = data.get("external_id")
    if external_id is None or (isinstance(external_id, str) and not external_id.strip()):
        return None, "missing external_id"
    if isinstance(external_id, bool) or not isinstance(external_id, str | int):
        return None, "external_id must be a string or an integer"
    if isinstance(external_id, int) and number_problem(external_id) is not None:
        return None, "external_id is a number out of range"
    if isinstance(external_id, str) and len(external_id) > 200:
        return None, "external_id longer than 200 characters"
    external_id = str(external_id).strip()
    if (problem := text_problem(external_id)) is not None:
        return None, f"external_id {problem}"
    fields: dict[str, Any] = {}
    for spec_field in project.input_fields:
        value = data.get(spec_field.name)
        if value is None:
            if spec_field.required:
                return None, f"missing required field {spec_field.name}"
            continue
        fields[spec_field.name], reason = _coerce(spec_field, value, row.textual)
        if reason:
            return None, reason
    language = fields.get("language") or data.get("language") or project.languages[0]
    if language not in project.languages:
        # The reason names the allowed languages, never the value sent: reasons reach ops' reports.
        return None, f"language is not one of the project's: {', '.join(project.languages)}"
    gold = data.get("gold_answer")
    if isinstance(gold, str) and row.textual:
        try:
            gold = orjson.loads(gold)
        except orjson.JSONDecodeError:
            return None, "gold_answer is not valid JSON"
    if gold is not None and not isinstance(gold, dict):
        return None, "gold_answer must be an object"
    if gold is not None and (problem := json_problem(gold)) is not None:
        return None, f"gold_answer {problem}"
    return {"external_id": external_id, "fields": fields, "language": language, "gold_answer": gold}, None


def refusal(batch_id: int, source: str, row: SourceRow, reason: str, external_id: str | None = None) -> dict[str, Any]:
    return {
        "batch_id": batch_id,
        "source": source,
        "line_number": row.line_number,
        "external_id": external_id,
        "raw": row.text,
        "reason": reason,
        "file_level": row.file_level,
    }


def _external_id_of(row: SourceRow) -> str | None:
    """The row's id as sent, if it has a usable one: it lets ops find a refused row."""
    value = (row.data or {}).get("external_id")
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    if isinstance(value, int) and number_problem(value) is not None:
        return None
    return clean_text(str(value)[:200])


def prepare_chunk(batch_id: int, source: str, rows: list[SourceRow], project: ProjectBody) -> PreparedChunk:
    """Validate each row against the project's input fields; no database needed."""
    counts = IngestCounts()
    items: dict[str, dict[str, Any]] = {}
    refused: list[dict[str, Any]] = []
    for row in rows:
        if row.file_level:
            counts.problems.append(row.error or "file problem")
            refused.append(refusal(batch_id, source, row, row.error or "file problem"))
            continue
        counts.read += 1
        values, reason = validate_row(row, project)
        if values is None:
            reason = reason or "invalid"
        elif values["external_id"] in items:
            reason = "duplicate external_id in the same file"
        if reason:
            counts.quarantined += 1
            counts.reasons[reason.split(":")[0]] += 1
            ext = values["external_id"] if values else _external_id_of(row)
            refused.append(refusal(batch_id, source, row, reason, ext))
            continue
        assert values is not None
        values["row"] = row
        items[values["external_id"]] = values
    prepared = PreparedChunk(items, refused, counts)
    if project.privacy is not None:
        _apply_privacy(prepared, batch_id, source, project)
    for values in items.values():
        values["content_hash"] = content_hash(values["fields"])
    return prepared


def _apply_privacy(prepared: PreparedChunk, batch_id: int, source: str, project: ProjectBody) -> None:
    """Look for personal data in the scanned fields and do what the project's policy says; the
    hash is taken after, so it is the hash of what is stored."""
    policy = project.privacy
    assert policy is not None
    slots = [
        (ext, name)
        for ext, values in prepared.items.items()
        for name in project.scanned_fields()
        if isinstance(values["fields"].get(name), str)
    ]
    found = privacy.scan([prepared.items[ext]["fields"][name] for ext, name in slots], policy.kinds, policy.min_score)
    kinds: dict[str, Counter[str]] = {}
    for (ext, name), spans in zip(slots, found, strict=True):
        if not spans:
            continue
        kinds.setdefault(ext, Counter()).update(privacy.kinds_counted(spans))
        if policy.action == "redact":
            fields = prepared.items[ext]["fields"]
            fields[name] = privacy.redact(fields[name], spans)
    for ext, counted in kinds.items():
        prepared.counts.personal_data.update(counted)
        if policy.action == "quarantine":
            values = prepared.items.pop(ext)
            row: SourceRow = values["row"]
            prepared.counts.quarantined += 1
            prepared.counts.reasons["personal data"] += 1
            # Its raw text is masked with every other refused row's when stored (mask_refused).
            prepared.refused.append(refusal(batch_id, source, row, f"personal data: {privacy.described(counted)}", ext))
        else:
            prepared.items[ext]["personal_data"] = {"action": policy.action, "kinds": dict(counted)}


def mask_refused(refused: list[dict[str, Any]], project: ProjectBody) -> None:
    """Under a privacy policy, every quarantined row's raw text is masked (whatever refused it: a
    bad field, a conflict, the database), so personal data never rests in quarantine either."""
    policy = project.privacy
    if policy is None or not refused:
        return
    found = privacy.scan([r["raw"] for r in refused], policy.kinds, policy.min_score)
    for row, spans in zip(refused, found, strict=True):
        if spans:
            row["raw"] = privacy.redact(row["raw"], spans)


def refuse(prepared: PreparedChunk, batch_id: int, source: str, failures: dict[str, str]) -> None:
    """Move rows a later check failed (external_id → reason) from the items to the refused."""
    for external_id, reason in failures.items():
        values = prepared.items.pop(external_id, None)
        if values is None:
            continue
        prepared.counts.quarantined += 1
        prepared.counts.reasons[reason.split(":")[0]] += 1
        prepared.refused.append(refusal(batch_id, source, values["row"], reason, external_id))
