"""Prompt rewrite with the model in the loop: the expert rewrites the item's prompt, runs it
against the project's model from the workbench, and submits the rewrite citing the run, whose
answer is kept beside the model's first one.

An answer is {"prompt": "…", "run": 17}: the run must be one of the task's answered runs, of this
very prompt (a rewrite edited after its run is run again before it is submitted). Stored, it also
holds the run's "answer", written in from the run.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from nightshift.fields.base import AnswerContext, ColumnCheck
from nightshift.fields.free_text import OwnWordsField, length_column, simulated_text
from nightshift.projects.spec import PromptRewrite


class PromptRewriteField(OwnWordsField[PromptRewrite]):
    """Aggregated as free text is: the reviewer-approved rewrite of the most reliable annotator
    (else the most reliable annotator's), with its run; no alpha, never compared with gold."""

    label_class = PromptRewrite
    type_name = "prompt_rewrite"
    control = "prompt_rewrite"
    in_item_agreement = False
    needs_responses = True
    needs_runs = True
    checked_for_echoes = True

    def answer_error(self, label: PromptRewrite, value: Any) -> str | None:
        if (
            not isinstance(value, dict)
            or set(value) - {"prompt", "run", "answer"}
            or not isinstance(value.get("prompt"), str)
        ):
            return "must be the rewritten prompt and the run that answered it"
        if not label.min_length <= len(value["prompt"].strip()) <= label.max_length:
            return f"the rewritten prompt must be {label.min_length} to {label.max_length} characters"
        run = value.get("run")
        if not isinstance(run, int) or isinstance(run, bool) or run <= 0:
            return "run the rewritten prompt against the model before submitting it"
        return None

    def response_error(self, label: PromptRewrite, value: Any, context: AnswerContext) -> str | None:
        ran = next((prompt for run_id, prompt, _ in context.turns(label.name) if run_id == value["run"]), None)
        if ran is None:
            return "that run is not one of this task's answered runs"
        if ran != value["prompt"].strip():
            return "the prompt changed after its run: run it again before submitting"
        return None

    def completed(self, label: PromptRewrite, value: Any, context: AnswerContext) -> Any:
        answers = {run_id: reply for run_id, _, reply in context.turns(label.name)}
        return {"prompt": value["prompt"].strip(), "run": value["run"], "answer": answers.get(value["run"], "")}

    run_noun = "rewrite"

    def echo_text(self, label: PromptRewrite, value: Any) -> str | None:
        # A rewrite that is the item's prompt with a word changed taught the model nothing.
        return self.run_input(label, value) or None

    def run_input(self, label: PromptRewrite, value: Any) -> str:
        return str(value.get("prompt") or "") if isinstance(value, dict) else ""

    def with_run(self, label: PromptRewrite, value: Any, run_id: int | None, asked: str) -> Any:
        return {"prompt": asked} if run_id is None else {"prompt": asked, "run": run_id}

    def runs_to_ask(self, label: PromptRewrite, value: Any) -> list[str]:
        return [value["prompt"]] if isinstance(value, dict) and "run" not in value else []

    def cite(self, label: PromptRewrite, value: Any, runs: Sequence[tuple[int, str, str]]) -> Any:
        run_id, prompt, answer = runs[0]
        return {"prompt": prompt, "run": run_id, "answer": answer}

    def from_form(self, values: Sequence[object]) -> Any:
        # The prompt's text box, then the hidden id of the run the page shows for it.
        texts = [v for v in values if isinstance(v, str)]
        if not texts or not texts[0].strip():
            return None
        run = next((v.removeprefix("run:") for v in texts[1:] if v.startswith("run:")), "")
        value: dict[str, Any] = {"prompt": texts[0]}
        if run.isascii() and run.isdigit() and len(run) < 19:
            value["run"] = int(run)
        return value

    def true_value(self, label: PromptRewrite, rng: random.Random) -> Any:
        return {"prompt": simulated_text(rng, label, "Rewrite")}

    def simulated_value(self, label: PromptRewrite, rng: random.Random, truth: Any, correct: bool) -> Any:
        # The simulator runs the rewrite and adds the run's id before it submits.
        return {"prompt": simulated_text(rng, label, "Rewrite")}

    def gate_column(self, name: str) -> str:
        return length_column(name)

    def gate_values(self, label: PromptRewrite, values: Sequence[Any]) -> list[Any]:
        return [
            None
            if v is None
            else len(v["prompt"].strip())
            if isinstance(v, dict) and isinstance(v.get("prompt"), str)
            else -1
            for v in values
        ]

    def gate_checks(self, label: PromptRewrite) -> list[ColumnCheck]:
        return [
            ColumnCheck(
                "ExpectColumnValuesToBeBetween",
                length_column(label.name),
                f"{label.name} shorter than {label.min_length} characters",
                {"min_value": label.min_length, "max_value": label.max_length},
            )
        ]
