"""What every field type answers: the base class the registry hands out, and the plain data it returns."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from nightshift.fields.alpha import Answers as Answers
from nightshift.fields.columns import Column, ColumnResults
from nightshift.platform.errors import NightshiftError
from nightshift.projects.spec import _Label

L = TypeVar("L", bound=_Label)


class UnknownFieldType(NightshiftError):
    """A label whose class no field type is registered for."""


class AnswerContext(Protocol):
    """What an answer may point into, read only when a field asks (fields with needs_responses)."""

    def response_lengths(self) -> Mapping[str, int]:
        """The item's model responses' lengths by label (A, B, …)."""
        ...

    def turns(self, label: str) -> Sequence[tuple[int, str, str]]:
        """The task's answered runs of one label, oldest first: (run id, prompt or message, reply)."""
        ...


class Ballot(Protocol):
    """One accepted annotation of an item, as aggregation sees it (nightshift.review.aggregate.Vote)."""

    @property
    def submission_id(self) -> int: ...
    @property
    def expert_id(self) -> int: ...
    @property
    def reliability(self) -> float: ...
    @property
    def answer(self) -> Mapping[str, Any]: ...
    @property
    def approved(self) -> bool: ...


@dataclass(frozen=True)
class FieldResult:
    """One field's final answer for an item."""

    value: Any
    method: dict[str, Any]
    # Share of the item's experts agreeing with the value; None: the field is not compared.
    share: float | None = None


@dataclass(frozen=True)
class ColumnCheck:
    """A Great Expectations expectation on the submissions gate's frame, as plain data:
    great_expectations.expectations.<expectation>(column=column, **options)."""

    expectation: str
    column: str
    reason: str
    options: dict[str, Any] = field(default_factory=dict)


class FieldType(ABC, Generic[L]):
    """The behaviour of one kind of label (answer field). One subclass per label class of the spec."""

    # The label class of nightshift.projects.spec this field type serves, and its `type` value.
    label_class: ClassVar[type[_Label]]
    type_name: ClassVar[str]
    # The Jinja macro of app/templates/field_controls.html that renders its form control.
    control: ClassVar[str]
    # Counted in an item's mean agreement (aggregation); False: its share only tells disagreement.
    in_item_agreement: ClassVar[bool] = True
    # Has a Krippendorff's alpha (agreement between experts).
    measures_alpha: ClassVar[bool] = True
    # Compared for text pasted by several experts.
    checked_for_copies: ClassVar[bool] = False
    # Its answers hold the expert's words, compared with what the item showed them (review.echoes).
    checked_for_echoes: ClassVar[bool] = False
    # Its answers point into the item's model responses or the task's runs: checked against them too.
    needs_responses: ClassVar[bool] = False
    # Its answers cite the task's model runs (the workbench shows them and can ask for more).
    needs_runs: ClassVar[bool] = False
    # Place among the fields a matcher compares with gold or a final answer, cheapest first;
    # None: never compared (it cannot be judged right or wrong).
    comparison_order: ClassVar[int | None] = 1

    # --- an expert's answer ---

    @abstractmethod
    def answer_error(self, label: L, value: Any) -> str | None:
        """Why this (non-null) value is not a valid answer to the label; None when it is."""

    def response_error(self, label: L, value: Any, context: AnswerContext) -> str | None:
        """With needs_responses: why this valid value does not fit what it points into (the item's
        responses, the task's model runs); None when it does."""
        return None

    def completed(self, label: L, value: Any, context: AnswerContext) -> Any:
        """A valid value as it is stored: with needs_runs, the texts of the runs it cites are
        written in from the runs themselves (what the expert sent is never trusted for them), so
        the delivered record holds the conversation or the rewrite's answer. By default: as given."""
        return value

    def from_form(self, values: Sequence[object]) -> Any:
        """The answer in an HTML form's values for the field (every value sent under its name);
        None when the form leaves it unanswered. By default the last value, as text, if not blank."""
        raw = values[-1] if values else None
        if not isinstance(raw, str) or not raw.strip():
            return None
        return raw

    # --- aggregation ---

    def fit(self, label: L, votes: Mapping[int, Sequence[Ballot]], reliability: Mapping[int, float]) -> Any:
        """A model learnt over a whole batch (item id -> its votes) before any item is aggregated;
        handed back to aggregate for each item. None by default: items are aggregated on their own."""
        return None

    @abstractmethod
    def aggregate(
        self, label: L, present: list[Any], ranked: Sequence[Ballot], item_id: int, fitted: Any
    ) -> FieldResult:
        """The item's final value. present: the non-null values, most reliable expert first;
        ranked: the item's votes in the same order; fitted: what fit returned."""

    def aggregate_column(self, label: L, column: Column, fitted: Any) -> ColumnResults | None:
        """aggregate for every item of a batch at once, with each item's clear-majority check
        (nightshift.fields.columns); None: the field is aggregated item by item. Must give what
        aggregate gives. None by default, and for answers it does not expect."""
        return None

    # --- agreement between experts ---

    def alpha(self, label: L, answers: Answers) -> float | None:
        """Krippendorff's alpha of the field over these items; None: not measurable."""
        raise NotImplementedError(f"{self.type_name} has no alpha")

    # --- comparison with gold or the final answer ---

    def matches(self, got: Any, reference: Any) -> bool:
        """Whether an answer's value agrees with the reference value. By default: equal."""
        return bool(got == reference)

    def gold_credit(self, label: L, got: Any, reference: Any) -> float:
        """Credit in [0, 1] for an answer's value against a known (gold) one: partial where the type
        has a distance. By default all or nothing, as matches says."""
        return 1.0 if got is not None and self.matches(got, reference) else 0.0

    def alternatives(self, label: L) -> int | None:
        """How many distinct answers the field has, for the confidence that the final one is right
        (votes weighed by each expert's quality); None: the field settles by a clear majority alone."""
        return None

    # --- simulated answers (the simulator is seeded: the draws' order is part of the contract) ---

    @abstractmethod
    def true_value(self, label: L, rng: random.Random) -> Any:
        """What a perfect expert answers, drawn from the item's seeded generator."""

    @abstractmethod
    def simulated_value(self, label: L, rng: random.Random, truth: Any, correct: bool) -> Any:
        """What a simulated expert answers: the truth when correct, else a guess from rng."""

    # What the workbench's run button sends to the model, as its message says ("your rewrite").
    run_noun: ClassVar[str] = "prompt"

    def echo_text(self, label: L, value: Any) -> str | None:
        """With checked_for_echoes: the expert's own words in this answer, which must not be the
        item's input or a model's answer with trivial edits."""
        return None

    def run_input(self, label: L, value: Any) -> str:
        """With needs_runs: what a form's value asks the model (the page's run button)."""
        raise NotImplementedError(f"{self.type_name} asks the model nothing")

    def with_run(self, label: L, value: Any, run_id: int | None, asked: str) -> Any:
        """The form's value once the model answered what it asked as run_id (None: no answer, so
        what was asked stays to be asked again)."""
        raise NotImplementedError(f"{self.type_name} asks the model nothing")

    def runs_to_ask(self, label: L, value: Any) -> list[str]:
        """With needs_runs: the prompts (or messages) a simulated value runs against the model, in
        order, before it can be submitted; none once it cites its runs."""
        return []

    def cite(self, label: L, value: Any, runs: Sequence[tuple[int, str, str]]) -> Any:
        """The simulated value citing the answered runs of runs_to_ask's prompts, in their order,
        each (run id, prompt, answer): as completed would store it."""
        return value

    # --- training data (nightshift.delivery.training), from the final value over model responses ---

    def preferences(self, label: L, value: Any, method: Mapping[str, Any]) -> list[tuple[str, str, float | None]]:
        """The (chosen, rejected, margin) pairs of response labels (A, B, …) the final value orders,
        the best pair first; none by default."""
        return []

    def response_scores(self, label: L, value: Any, method: Mapping[str, Any]) -> dict[str, float]:
        """A score per response label the final value gives (for reward models); none by default."""
        return {}

    def dialogue(self, label: L, value: Any) -> list[tuple[str, str, float, bool]]:
        """A conversation the final value holds: (message, reply, rating 0..1, unmarked) per turn."""
        return []

    def scaled(self, label: L, value: Any) -> float | None:
        """The final value as a score of one response from 0 (worst) to 1 (best); None: not a score."""
        return None

    def true_value_from_faults(self, label: L, faults: Mapping[str, Sequence[tuple[str, int, int]]], drawn: Any) -> Any:
        """The simulator's truth for an item whose model responses (by label) hold these planted
        faults, each (kind, start, end); drawn: the truth true_value drew, for what the faults leave
        open. None: the field's truth does not depend on them."""
        return None

    # --- the submissions gate (Great Expectations, as data) ---

    def gate_column(self, name: str) -> str:
        """The gate frame's column for the field."""
        return name

    def gate_values(self, label: L, values: Sequence[Any]) -> list[Any]:
        """The field's answers as the gate frame's column holds them: a list joined by ';'."""
        return [";".join(v) if isinstance(v, list) else v for v in values]

    def gate_values_in(self, label: L, values: Sequence[Any], lengths: Sequence[Mapping[str, int] | None]) -> list[Any]:
        """gate_values, given each row's response lengths (by label; None for a row without them).
        Only a field type that needs_responses reads them."""
        return self.gate_values(label, values)

    @abstractmethod
    def gate_checks(self, label: L) -> list[ColumnCheck]:
        """What the gate expects of the field's column, besides being present when required."""
