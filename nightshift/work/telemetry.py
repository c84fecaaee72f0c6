"""How an answer was written, as the workbench reports it with the submission: each paste (which
field, how many characters) and a typing timeline (characters typed per field, in seconds since
the task opened). Bounded and checked here; a paste that makes up most of a long text becomes a
"pasted" signal (work.signals). The client can lie, so this only ever adds suspicion: the server's
own clock and the texts themselves are checked at the gate regardless."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightshift.fields import field_type
from nightshift.platform.models import Assignment, Submission
from nightshift.projects.spec import ProjectBody
from nightshift.work import signals
from nightshift.work.access import AnswerInvalid, project_of
from nightshift.work.signals import Signal

MAX_EVENTS = 500
MAX_BYTES = 64 * 1024
MAX_SECONDS = 7 * 24 * 3600
# Text shorter than this is not judged: pasting a short phrase is ordinary.
MIN_WRITTEN = 40
# The share of a field's final text that arrived by paste, from which the field counts as pasted.
PASTED_SHARE = 0.5


def parse(raw: Any) -> dict[str, Any]:
    """The telemetry as sent ({"pastes": [{"field", "chars", "at"}], "typing": [{"field", "chars", "at"}]}),
    checked and bounded; AnswerInvalid names what is wrong."""
    if not isinstance(raw, dict) or set(raw) - {"pastes", "typing"}:
        raise AnswerInvalid({"telemetry": "an object with 'pastes' and 'typing' lists"})
    clean: dict[str, Any] = {}
    for part in ("pastes", "typing"):
        events = raw.get(part) or []
        if not isinstance(events, list) or len(events) > MAX_EVENTS:
            raise AnswerInvalid({"telemetry": f"{part}: a list of at most {MAX_EVENTS} events"})
        checked = []
        for event in events:
            if (
                not isinstance(event, dict)
                or not isinstance(event.get("field"), str)
                or len(event["field"]) > 100
                or type(event.get("chars")) is not int
                or not 0 <= event["chars"] <= 1_000_000
                or not isinstance(event.get("at", 0), int | float)
                or not 0 <= event.get("at", 0) <= MAX_SECONDS
            ):
                raise AnswerInvalid({"telemetry": f"{part}: each event is {{field, chars, at}} within bounds"})
            checked.append(
                {"field": event["field"], "chars": event["chars"], "at": round(float(event.get("at", 0)), 1)}
            )
        clean[part] = checked
    return clean


def pasted_signal(
    submission_id: int, telemetry: dict[str, Any], answer: dict[str, Any], project: ProjectBody
) -> Signal:
    """How much of the expert's written text was pasted rather than typed: the share over the
    fields whose text is long enough to judge, with the timeline's totals as evidence."""
    written: dict[str, int] = {}
    for label in project.labels:
        kind = field_type(label)
        if kind.checked_for_copies or kind.checked_for_echoes:
            text = kind.echo_text(label, answer.get(label.name))
            if text and len(text.strip()) >= MIN_WRITTEN:
                written[label.name] = len(text)
    pasted: dict[str, int] = defaultdict(int)
    typed: dict[str, int] = defaultdict(int)
    for event in telemetry["pastes"]:
        pasted[event["field"]] += event["chars"]
    for event in telemetry["typing"]:
        typed[event["field"]] += event["chars"]
    shares = {name: min(pasted[name] / length, 1.0) for name, length in written.items()}
    flagged = sorted(name for name, share in shares.items() if share >= PASTED_SHARE)
    score = max(shares.values(), default=0.0) if flagged else 0.0
    seconds = [e["at"] for e in telemetry["typing"]]
    evidence = {
        "fields": flagged,
        "pastes": len(telemetry["pastes"]),
        "pasted_chars": sum(pasted.values()),
        "typed_chars": sum(typed.values()),
        "written_chars": sum(written.values()),
        "typing_seconds": round(max(seconds) - min(seconds), 1) if seconds else 0.0,
    }
    return Signal(submission_id, "pasted", round(score, 4), evidence)


def record_for_submission(session: Session, submission_id: int, telemetry: dict[str, Any]) -> Signal:
    """Keep the pasted signal of a submission just made, from its parsed telemetry."""
    item_id, answer = session.execute(
        select(Assignment.item_id, Submission.answer)
        .join(Submission, Submission.assignment_id == Assignment.id)
        .where(Submission.id == submission_id)
    ).one()
    _, project = project_of(session, item_id)
    signal = pasted_signal(submission_id, telemetry, answer, project)
    signals.record(session, [signal])
    return signal
