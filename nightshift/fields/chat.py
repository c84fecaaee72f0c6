"""Multi-turn chat with the model in the loop: the expert converses with one of the project's
models from the workbench (each turn a stored run: their message, the model's reply), then rates
every reply on the label's scale and marks the ones with errors.

An answer cites the task's answered turns of the chat, all of them and in order:
{"turns": [{"run": 17, "rating": 4, "marks": ["factual_error"], "note": "…"}, …]}. Stored, each
turn also holds its "message" and "reply", written in from the runs (nightshift.fields.base.completed).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from nightshift.fields.base import AnswerContext, ColumnCheck
from nightshift.fields.free_text import OwnWordsField
from nightshift.projects.spec import Chat

# What a turn of an answer may hold; the texts are the runs', whatever a client sent for them.
_TURN_KEYS = {"run", "rating", "marks", "note", "message", "reply"}
# A reply good enough to train on: unmarked and rated at least this far up the scale (0..1).
GOOD_REPLY = 0.75
# The simulated expert's messages: the first takes the item prompt's place, the rest follow up.
SIMULATED_MESSAGES = (
    "Answer the scenario above for the client, showing each step of your reasoning.",
    "Check your answer against every figure in the context: which assumption is the weakest?",
    "Summarise your recommendation in three sentences for the client's CFO.",
)


def turns_in_answer(value: Any) -> list[dict[str, Any]]:
    return [t for t in value.get("turns") or [] if isinstance(t, dict)] if isinstance(value, dict) else []


class ChatField(OwnWordsField[Chat]):
    """Aggregated as free text is: the reviewer-approved conversation of the most reliable
    annotator (else the most reliable annotator's), with its ratings; each expert holds their own
    conversation, so there is no alpha and nothing is compared with gold."""

    label_class = Chat
    type_name = "chat"
    control = "chat"
    in_item_agreement = False
    needs_responses = True
    needs_runs = True

    def answer_error(self, label: Chat, value: Any) -> str | None:
        if not isinstance(value, dict) or set(value) - {"turns", "message"} or not isinstance(value.get("turns"), list):
            return "must be the chat's turns, each with its run and rating"
        turns = value["turns"]
        if not label.min_turns <= len(turns) <= label.max_turns:
            return f"a chat of {label.min_turns} to {label.max_turns} turns, each rated"
        for number, turn in enumerate(turns, 1):
            if not isinstance(turn, dict) or set(turn) - _TURN_KEYS:
                return f"turn {number}: must be its run, rating, marks and note"
            run, rating, marks = turn.get("run"), turn.get("rating"), turn.get("marks", [])
            if not isinstance(run, int) or isinstance(run, bool) or run <= 0:
                return f"turn {number}: send the message to the model first"
            if (
                not isinstance(rating, int)
                or isinstance(rating, bool)
                or not label.rating_min <= rating <= label.rating_max
            ):
                return f"turn {number}: rate the reply from {label.rating_min} to {label.rating_max}"
            if (
                not isinstance(marks, list)
                or len(set(map(str, marks))) != len(marks)
                or any(m not in label.error_types for m in marks)
            ):
                return f"turn {number}: marks must be distinct error types of {label.error_types}"
            note = turn.get("note", "")
            if not isinstance(note, str) or len(note) > label.max_note_chars:
                return f"turn {number}: a note of at most {label.max_note_chars} characters"
        return None

    def response_error(self, label: Chat, value: Any, context: AnswerContext) -> str | None:
        held = [run_id for run_id, _, _ in context.turns(label.name)]
        cited = [turn["run"] for turn in value["turns"]]
        if cited != held:
            return (
                f"the answer must rate every turn of this task's chat, in order ({len(held)} so far)"
                if set(cited) <= set(held)
                else "a turn that is not one of this task's chat"
            )
        return None

    def completed(self, label: Chat, value: Any, context: AnswerContext) -> Any:
        texts = {run_id: (message, reply) for run_id, message, reply in context.turns(label.name)}
        return {
            "turns": [
                {
                    "run": turn["run"],
                    "message": texts[turn["run"]][0],
                    "reply": texts[turn["run"]][1],
                    "rating": turn["rating"],
                    "marks": list(turn.get("marks") or []),
                    "note": turn.get("note") or "",
                }
                for turn in value["turns"]
            ]
        }

    def from_form(self, values: Sequence[object]) -> Any:
        # In the page's order: the next message's box, then per turn its hidden "turn:<run>", the
        # rating's "rating:<n>", the note's box, and a "mark:<type>" per ticked mark. The boxes are
        # read by place, never by their content, so a note saying "turn:3" stays a note.
        texts = [v for v in values if isinstance(v, str)]
        if not texts:
            return None
        value: dict[str, Any] = {"turns": []}
        if texts[0].strip():
            value["message"] = texts[0]
        rest = texts[1:]
        k = 0
        while k < len(rest):
            run = rest[k].removeprefix("turn:")
            if not rest[k].startswith("turn:") or not (run.isascii() and run.isdigit() and len(run) < 19):
                return value | {"turns": "unreadable"}
            turn: dict[str, Any] = {"run": int(run), "marks": []}
            rating = rest[k + 1].removeprefix("rating:") if k + 1 < len(rest) else ""
            if rating.lstrip("-").isascii() and rating.lstrip("-").isdigit() and len(rating) < 5:
                turn["rating"] = int(rating)
            if k + 2 < len(rest) and rest[k + 2].strip():
                turn["note"] = rest[k + 2].strip()
            k += 3
            while k < len(rest) and rest[k].startswith("mark:"):
                turn["marks"].append(rest[k].removeprefix("mark:"))
                k += 1
            value["turns"].append(turn)
        if not value["turns"] and "message" not in value:
            return None
        return value

    def dialogue(self, label: Chat, value: Any) -> list[tuple[str, str, float, bool]]:
        """The stored conversation's turns: (message, reply, rating scaled to 0..1, unmarked)."""
        span = label.rating_max - label.rating_min
        return [
            (
                str(t.get("message") or ""),
                str(t.get("reply") or ""),
                (t["rating"] - label.rating_min) / span,
                not t.get("marks"),
            )
            for t in turns_in_answer(value)
            if isinstance(t.get("rating"), int)
        ]

    def true_value(self, label: Chat, rng: random.Random) -> Any:
        turns = max(label.min_turns, min(2, label.max_turns))
        return {
            "turns": [
                {
                    "message": SIMULATED_MESSAGES[k % len(SIMULATED_MESSAGES)],
                    "rating": rng.randint(label.rating_min, label.rating_max),
                    "marks": [],
                }
                for k in range(turns)
            ]
        }

    def simulated_value(self, label: Chat, rng: random.Random, truth: Any, correct: bool) -> Any:
        turns = [dict(t) for t in truth["turns"]]
        if not correct:
            for turn in turns:
                turn["rating"] = rng.randint(label.rating_min, label.rating_max)
                turn["marks"] = [rng.choice(label.error_types)] if rng.random() < 0.5 else []
        return {"turns": turns}

    run_noun = "message"

    def run_input(self, label: Chat, value: Any) -> str:
        return str(value.get("message") or "") if isinstance(value, dict) else ""

    def with_run(self, label: Chat, value: Any, run_id: int | None, asked: str) -> Any:
        turns = turns_in_answer(value)
        # A message the model did not answer stays in the box, to send again.
        return {"turns": [*turns, {"run": run_id}]} if run_id is not None else {"turns": turns, "message": asked}

    def runs_to_ask(self, label: Chat, value: Any) -> list[str]:
        turns = turns_in_answer(value)
        return [str(t.get("message") or "") for t in turns] if turns and "run" not in turns[0] else []

    def cite(self, label: Chat, value: Any, runs: Sequence[tuple[int, str, str]]) -> Any:
        return {
            "turns": [
                turn | {"run": run_id, "message": message, "reply": reply}
                for turn, (run_id, message, reply) in zip(turns_in_answer(value), runs, strict=True)
            ]
        }

    def gate_values(self, label: Chat, values: Sequence[Any]) -> list[Any]:
        # The number of turns, or -1 when a turn's rating is off the scale.
        return [
            None
            if v is None
            else len(turns)
            if (turns := turns_in_answer(v))
            and all(
                isinstance(t.get("rating"), int) and label.rating_min <= t["rating"] <= label.rating_max for t in turns
            )
            else -1
            for v in values
        ]

    def gate_column(self, name: str) -> str:
        return f"{name}__turns"

    def gate_checks(self, label: Chat) -> list[ColumnCheck]:
        return [
            ColumnCheck(
                "ExpectColumnValuesToBeBetween",
                self.gate_column(label.name),
                f"{label.name}: a chat of {label.min_turns} to {label.max_turns} turns, each reply rated on its scale",
                {"min_value": label.min_turns, "max_value": label.max_turns},
            )
        ]
