"""Field types: each kind of label parses, aggregates, measures agreement and simulates on its own;
the registry knows every label class of the spec and refuses one it does not know."""

from __future__ import annotations

import random
import typing
from pathlib import Path
from typing import Any, Literal

import jinja2
import pytest
from pydantic import BaseModel

from nightshift.fields import FIELD_TYPES, ColumnCheck, UnknownFieldType, field_type, field_type_named
from nightshift.fields.alpha import alpha
from nightshift.platform.errors import NightshiftError
from nightshift.projects.spec import (
    Chat,
    Criterion,
    FreeText,
    GradedPreference,
    Label,
    MultiChoice,
    OrdinalScale,
    PairwisePreference,
    PromptRewrite,
    Ranking,
    Rubric,
    SingleChoice,
    Spans,
)
from nightshift.review.aggregate import Vote
from nightshift.simulation.synthetic import simulated_answer, true_answer

TEMPLATES = Path(__file__).parents[3] / "app" / "templates"

SCALE = OrdinalScale(name="rating", type="ordinal_scale", min=1, max=5)
CHOICE = SingleChoice(name="verdict", type="single_choice", options=["yes", "no", "maybe"], aggregation="majority_vote")
MODELLED = SingleChoice(name="verdict", type="single_choice", options=["yes", "no", "maybe"])
TAGS = MultiChoice(name="tags", type="multi_choice", options=["a", "b", "c"])
TEXT = FreeText(name="notes", type="free_text", min_length=3, max_length=10)
PREFERENCE = PairwisePreference(name="preferred", type="pairwise_preference")
RANKING = Ranking(name="ranking", type="ranking", options=["A", "B", "C"])
CHAT = Chat(name="talk", type="chat", min_turns=1, max_turns=2, rating_min=1, rating_max=5, error_types=["unsafe"])
SPANS = Spans(name="errors", type="spans", error_types=["factual_error", "unsafe"], max_spans=3, max_note_chars=20)
RUBRIC = Rubric(
    name="grade",
    type="rubric",
    criteria=[
        Criterion(name="accuracy", weight=3, min=0, max=4),
        Criterion(name="clarity", weight=1, min=1, max=5),
    ],
)


class Slider(BaseModel):
    """A label of a type no field type serves."""

    name: str = "volume"
    type: Literal["slider"] = "slider"
    required: bool = True


def _label_classes() -> set[type]:
    union = typing.get_args(Label)[0]
    return set(typing.get_args(union))


def _votes(name: str, values: list[Any], approved: tuple[int, ...] = ()) -> list[Vote]:
    """Votes ranked as aggregation ranks them: the first the most reliable."""
    return [Vote(n + 1, 100 + n, 0.9 - n / 10, {name: value}, approved=n in approved) for n, value in enumerate(values)]


def _aggregate(label: Any, values: list[Any], approved: tuple[int, ...] = ()) -> Any:
    kind = field_type(label)
    votes = _votes(label.name, values, approved)
    fitted = kind.fit(label, {7: votes}, {v.expert_id: v.reliability for v in votes})
    present = [v.answer[label.name] for v in votes if v.answer.get(label.name) is not None]
    return kind.aggregate(label, present, votes, 7, fitted)


# --- the registry ---


def test_every_label_class_of_the_spec_has_a_registered_field_type() -> None:
    classes = _label_classes()
    assert classes == {
        OrdinalScale,
        SingleChoice,
        MultiChoice,
        FreeText,
        PairwisePreference,
        Ranking,
        Rubric,
        Spans,
        PromptRewrite,
        Chat,
        GradedPreference,
    }
    for cls in classes:
        kind = field_type(cls.model_construct(name="x"))
        assert kind.label_class is cls
        # The field type's name is the label's `type` value: how a label read back as JSON finds it.
        assert typing.get_args(cls.model_fields["type"].annotation) == (kind.type_name,)
        assert field_type_named(kind.type_name) is kind
    assert len({kind.label_class for kind in FIELD_TYPES}) == len(FIELD_TYPES)


def test_every_field_types_form_control_is_a_macro_of_the_controls_template() -> None:
    controls = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES)).get_template("field_controls.html")
    for kind in FIELD_TYPES:
        assert callable(getattr(controls.module, kind.control, None)), kind.control


def test_the_registry_refuses_a_label_of_an_unknown_type() -> None:
    with pytest.raises(UnknownFieldType, match=r"volume.*Slider.*slider"):
        field_type(Slider())
    with pytest.raises(UnknownFieldType, match="slider"):
        field_type_named("slider")
    assert issubclass(UnknownFieldType, NightshiftError)
    # A stage raises too, where each once fell to its own default.
    with pytest.raises(UnknownFieldType):
        true_answer("hash", [Slider()])  # type: ignore[list-item]


# --- parsing an answer ---


@pytest.mark.parametrize(
    ("label", "good", "bad"),
    [
        (SCALE, [1, 3, 5], [0, 6, 2.5, True, "3"]),
        (CHOICE, ["yes", "maybe"], ["YES", 1, ["yes"]]),
        (PREFERENCE, ["A", "B", "tie"], ["C", "a"]),
        (TAGS, [[], ["a"], ["c", "a"]], ["a", ["d"], ["a", "a"]]),
        (TEXT, ["abc", "  abcdefghij  "], [3, "ab", "abcdefghijk"]),
        (RANKING, [["A", "B", "C"], ["C", "A", "B"]], [["A", "B"], ["A", "A", "B"], ["A", "B", "D"], "ABC", [1, 2, 3]]),
        (
            RUBRIC,
            [{"accuracy": 0, "clarity": 5}, {"accuracy": 4, "clarity": 1}],
            [
                {"accuracy": 0},
                {"accuracy": 5, "clarity": 1},
                {"accuracy": 1, "clarity": 0},
                {"accuracy": 1, "clarity": 2, "tone": 3},
                {"accuracy": True, "clarity": 2},
                [1, 2],
            ],
        ),
    ],
)
def test_answer_errors(label: Any, good: list[Any], bad: list[Any]) -> None:
    kind = field_type(label)
    assert [kind.answer_error(label, value) for value in good] == [None] * len(good)
    assert all(kind.answer_error(label, value) for value in bad)


def test_answer_error_messages() -> None:
    assert field_type(SCALE).answer_error(SCALE, 9) == "must be a whole number from 1 to 5"
    assert field_type(TAGS).answer_error(TAGS, ["a", "a"]) == "lists an option twice"
    assert field_type(TEXT).answer_error(TEXT, "x") == "must be 3 to 10 characters"
    assert field_type(RANKING).answer_error(RANKING, ["A", "A", "B"]) == "must order A, B, C, each once, best first"
    assert field_type(RUBRIC).answer_error(RUBRIC, {"accuracy": 1}) == "criterion clarity is not scored"
    assert field_type(RUBRIC).answer_error(RUBRIC, {"accuracy": 1, "clarity": 9}) == (
        "criterion clarity must be a whole number from 1 to 5"
    )


def test_form_values_become_typed_answers() -> None:
    scale, tags, text = field_type(SCALE), field_type(TAGS), field_type(TEXT)
    assert scale.from_form(["4"]) == 4
    assert scale.from_form(["-2"]) == -2
    assert scale.from_form(["x4"]) == "x4"  # left as text, for the schema check to refuse
    assert scale.from_form(["9" * 19]) == "9" * 19
    assert scale.from_form(["  "]) is None
    assert scale.from_form([]) is None
    assert tags.from_form(["a", "c"]) == ["a", "c"]
    assert tags.from_form([""]) == [""]
    assert tags.from_form([]) is None
    assert text.from_form(["first", "last"]) == "last"
    assert text.from_form([" hi "]) == " hi "
    # A parsed form value is a valid answer.
    assert scale.answer_error(SCALE, scale.from_form(["4"])) is None
    ranking, rubric = field_type(RANKING), field_type(RUBRIC)
    assert ranking.from_form(["A=2", "B=3", "C=1"]) == ["C", "A", "B"]
    assert ranking.answer_error(RANKING, ranking.from_form(["A=2", "B=3", "C=1"])) is None
    # Two on one place, or one left out, is no order: refused with the reason, not guessed.
    assert ranking.answer_error(RANKING, ranking.from_form(["A=1", "B=1", "C=2"]))
    assert ranking.answer_error(RANKING, ranking.from_form(["A=1", "", "C=2"]))
    assert ranking.from_form(["", "", ""]) is None
    assert rubric.from_form(["accuracy=3", "clarity=5"]) == {"accuracy": 3, "clarity": 5}
    assert rubric.from_form(["accuracy=3", ""]) == {"accuracy": 3}
    assert rubric.from_form(["accuracy=x"]) == {"accuracy": "x"}
    assert rubric.from_form(["", ""]) is None


# --- aggregation ---


def test_scale_takes_the_median() -> None:
    result = _aggregate(SCALE, [5, 4, 1])
    assert result.value == 4
    assert result.method == {"method": "median", "mean": 3.333, "spread": 1.7, "n": 3}
    assert result.share == pytest.approx(2 / 3)
    # Weighed by quality: the more reliable expert (0.9 against 0.8) carries a two-vote split.
    assert _aggregate(SCALE, [2, 3]).value == 2
    empty = _aggregate(SCALE, [None])
    assert (empty.value, empty.share) == (None, None)


def test_single_choice_takes_the_majority_or_dawid_skene() -> None:
    result = _aggregate(CHOICE, ["no", "yes", "yes"])
    assert (result.value, result.share) == ("yes", pytest.approx(2 / 3))
    assert result.method == {"method": "majority_vote", "votes": {"no": 1, "yes": 2}, "n": 3}
    # A tie goes to the most reliable expert's choice.
    assert _aggregate(CHOICE, ["no", "yes"]).value == "no"
    modelled = _aggregate(MODELLED, ["no", "yes", "yes"])
    assert modelled.value == "yes"
    assert modelled.method["method"] == "dawid_skene"
    assert modelled.method["majority"] == "yes"


def test_multi_choice_votes_per_tag() -> None:
    result = _aggregate(TAGS, [["a", "b"], ["a"], ["a", "c"]])
    assert result.value == ["a"]
    assert result.method == {"method": "per_tag_majority", "votes": {"a": 3, "b": 1, "c": 1}, "n": 3}
    assert result.share == pytest.approx(1 / 3)
    assert not field_type(TAGS).in_item_agreement


def test_free_text_takes_the_approved_text_of_the_most_reliable() -> None:
    assert _aggregate(TEXT, ["first", "second", "third"], approved=(1, 2)).value == "second"
    result = _aggregate(TEXT, ["first", "second"])
    assert result.value == "first"
    assert result.method == {"method": "most_reliable_annotator", "approved": 0, "n": 2}
    assert result.share is None


def test_pairwise_preference_draws_to_a_tie() -> None:
    assert _aggregate(PREFERENCE, ["A", "A", "B"]).value == "A"
    tie = _aggregate(PREFERENCE, ["A", "B", "tie"])
    assert (tie.value, tie.share) == ("tie", pytest.approx(1 / 3))


# --- agreement ---


def test_alphas_of_perfect_agreement_and_of_none_to_measure() -> None:
    agreeing = {
        1: [{"rating": 1, "verdict": "yes", "tags": ["a"], "preferred": "A"}] * 2,
        2: [{"rating": 5, "verdict": "no", "tags": ["b"], "preferred": "B"}] * 2,
    }
    for label in (SCALE, CHOICE, TAGS, PREFERENCE):
        assert field_type(label).alpha(label, agreeing) == 1.0
    single = {1: [{"rating": 3}], 2: [{"rating": 4}]}
    assert field_type(SCALE).alpha(SCALE, single) is None
    assert not field_type(TEXT).measures_alpha


def test_ordinal_alpha_counts_near_misses_as_closer_than_nominal() -> None:
    answers = {1: [{"rating": 1}, {"rating": 2}], 2: [{"rating": 4}, {"rating": 5}], 3: [{"rating": 1}, {"rating": 1}]}
    ordinal = field_type(SCALE).alpha(SCALE, answers)
    nominal = alpha([[a["rating"] for a in item] for item in answers.values()], [1, 2, 3, 4, 5], "nominal")
    assert ordinal is not None and nominal is not None and ordinal > nominal


# --- comparison with a reference ---


def test_matches() -> None:
    scale, choice, tags, text = (field_type(label) for label in (SCALE, CHOICE, TAGS, TEXT))
    assert scale.matches(3, 4) and not scale.matches(2, 4) and not scale.matches(None, 4)
    assert choice.matches("yes", "yes") and not choice.matches("no", "yes")
    assert tags.matches(["a", "b"], ["a"]) and not tags.matches(["a", "b", "c"], ["a"]) and tags.matches([], [])
    assert text.comparison_order is None


# --- simulation ---


def test_simulated_answers_are_valid_and_reproducible() -> None:
    labels: list[Any] = [SCALE, CHOICE, TAGS, TEXT, PREFERENCE, RANKING, RUBRIC, SPANS]
    truth = true_answer("hash", labels)
    assert truth == true_answer("hash", labels)
    for label in labels:
        assert field_type(label).answer_error(label, truth[label.name]) is None
    answer, seconds = simulated_answer("hash", "expert-1", labels, 10)
    assert (answer, seconds) == simulated_answer("hash", "expert-1", labels, 10)
    for label in labels:
        assert field_type(label).answer_error(label, answer[label.name]) is None


def test_a_correct_expert_gives_the_truth() -> None:
    for label in (SCALE, CHOICE, TAGS, PREFERENCE, RANKING, RUBRIC):
        kind = field_type(label)
        truth = kind.true_value(label, random.Random(1))
        assert kind.simulated_value(label, random.Random(2), truth, correct=True) == truth


# --- the submissions gate, as data ---


def test_gate_checks_and_columns() -> None:
    assert field_type(SCALE).gate_checks(SCALE) == [
        ColumnCheck("ExpectColumnValuesToBeBetween", "rating", "rating outside 1..5", {"min_value": 1, "max_value": 5})
    ]
    text = field_type(TEXT)
    assert text.gate_column("notes") == "notes__length"
    assert text.gate_checks(TEXT)[0].column == "notes__length"
    assert text.gate_values(TEXT, [" abc ", None, 3]) == [3, None, -1]
    tags = field_type(TAGS)
    assert tags.gate_values(TAGS, [["a", "b"], [], None]) == ["a;b", "", None]
    (regex,) = tags.gate_checks(TAGS)
    assert regex.options["regex"] == "^(?:(?:a|b|c)(?:;(?:a|b|c))*)?$"
    assert field_type(PREFERENCE).gate_checks(PREFERENCE)[0].options == {"value_set": ["A", "B", "tie"]}


def test_scales_and_tags_weigh_each_vote_by_its_experts_quality() -> None:
    scale = OrdinalScale(name="rating", type="ordinal_scale", min=1, max=7)
    tags = MultiChoice(name="tags", type="multi_choice", options=["a", "b"])

    def votes(name: str, values: list[Any], qualities: list[float]) -> list[Vote]:
        return [Vote(n, n, q, {name: v}) for n, (v, q) in enumerate(zip(values, qualities, strict=True))]

    def final(label: Any, ballots: list[Vote]) -> Any:
        ranked = sorted(ballots, key=lambda v: (-v.reliability, v.submission_id))
        present = [v.answer[label.name] for v in ranked]
        return field_type(label).aggregate(label, present, ranked, 0, None).value

    # Equal qualities: the plain median and majority.
    assert final(scale, votes("rating", [2, 3, 7], [0.8, 0.8, 0.8])) == 3
    assert final(scale, votes("rating", [2, 3, 6, 7], [0.8] * 4)) == 5  # (3 + 6) / 2, rounded half up
    assert final(tags, votes("tags", [["a"], ["a"], ["b"]], [0.8] * 3)) == ["a"]
    # Two poor experts are outweighed by two good ones.
    assert final(scale, votes("rating", [2, 2, 6, 6], [0.2, 0.2, 0.9, 0.9])) == 6
    assert final(tags, votes("tags", [["a"], ["a"], ["b"]], [0.2, 0.2, 0.9])) == ["b"]


def test_a_ranking_is_a_permutation_and_a_rubric_complete_at_the_gate() -> None:
    ranking = field_type(RANKING)
    (permutation,) = ranking.gate_checks(RANKING)
    assert permutation.options == {"value_set": ["A;B;C"]}
    assert ranking.gate_values(RANKING, [["C", "A", "B"], ["A", "A", "B"], ["A", "B"], "A;B;C", None]) == [
        "A;B;C",
        "A;A;B",
        "A;B",
        "",
        None,
    ]
    rubric = field_type(RUBRIC)
    (complete,) = rubric.gate_checks(RUBRIC)
    assert complete.options == {"min_value": 2, "max_value": 2}
    values = [{"accuracy": 1, "clarity": 2}, {"accuracy": 1}, {"accuracy": 9, "clarity": 2}, None]
    assert rubric.gate_values(RUBRIC, values) == [2, 1, 1, None]


def test_rankings_aggregate_by_bradley_terry_weighing_each_expert() -> None:
    # Two careful experts put C first; one less reliable puts A first: C wins, with its interval.
    votes = [
        Vote(1, 101, 0.9, {"ranking": ["C", "A", "B"]}),
        Vote(2, 102, 0.8, {"ranking": ["C", "B", "A"]}),
        Vote(3, 103, 0.3, {"ranking": ["A", "B", "C"]}),
    ]
    result = field_type(RANKING).aggregate(RANKING, [v.answer["ranking"] for v in votes], votes, 7, None)
    assert result.value == ["C", "A", "B"]
    assert result.method["method"] == "bradley_terry" and result.method["n"] == 3
    scores, ci = result.method["scores"], result.method["ci95"]
    assert scores["C"] > scores["A"] > scores["B"]
    assert all(ci[o][0] < scores[o] < ci[o][1] for o in "ABC")
    assert 0 < result.method["kendalls_w"] < 1
    assert result.share == pytest.approx(2 / 3)
    # The same votes with the weights turned round: A wins.
    flipped = [Vote(v.submission_id, v.expert_id, 1.2 - v.reliability, v.answer) for v in votes]
    flipped[2] = Vote(3, 103, 5.0, votes[2].answer)
    assert field_type(RANKING).aggregate(RANKING, [], flipped, 7, None).value[0] == "A"


def test_rubrics_take_each_criterions_median_and_a_weighted_total() -> None:
    result = _aggregate(
        RUBRIC, [{"accuracy": 4, "clarity": 1}, {"accuracy": 3, "clarity": 1}, {"accuracy": 4, "clarity": 5}]
    )
    assert result.value == {"accuracy": 4, "clarity": 1}
    # accuracy 4 of 0..4 weighs 3, clarity 1 of 1..5 weighs 1: (3 * 1 + 1 * 0) / 4.
    assert result.method["total"] == 0.75
    assert result.share == pytest.approx(2 / 3)


def test_rankings_and_rubrics_compare_with_gold_by_distance() -> None:
    ranking, rubric = field_type(RANKING), field_type(RUBRIC)
    assert ranking.matches(["A", "C", "B"], ["A", "B", "C"]) and not ranking.matches(["B", "A", "C"], ["A", "B", "C"])
    assert ranking.gold_credit(RANKING, ["A", "B", "C"], ["A", "B", "C"]) == 1.0
    assert ranking.gold_credit(RANKING, ["C", "B", "A"], ["A", "B", "C"]) == 0.0
    assert ranking.gold_credit(RANKING, ["B", "A", "C"], ["A", "B", "C"]) == pytest.approx(2 / 3)
    assert rubric.gold_credit(RUBRIC, {"accuracy": 2, "clarity": 5}, {"accuracy": 4, "clarity": 5}) == 0.75
    assert rubric.matches({"accuracy": 3, "clarity": 4}, {"accuracy": 4, "clarity": 5})
    assert not rubric.matches({"accuracy": 2, "clarity": 5}, {"accuracy": 4, "clarity": 5})


def test_ranking_and_rubric_alphas() -> None:
    same = {1: [{"ranking": ["A", "B", "C"]}, {"ranking": ["A", "B", "C"]}], 2: [{"ranking": ["C", "B", "A"]}] * 2}
    assert field_type(RANKING).alpha(RANKING, same) == pytest.approx(1.0)
    graded = {
        1: [{"grade": {"accuracy": 4, "clarity": 5}}, {"grade": {"accuracy": 4, "clarity": 5}}],
        2: [{"grade": {"accuracy": 0, "clarity": 1}}, {"grade": {"accuracy": 0, "clarity": 1}}],
    }
    assert field_type(RUBRIC).alpha(RUBRIC, graded) == pytest.approx(1.0)


def _span(response: str, start: int, end: int, kind: str = "factual_error", **extra: Any) -> dict[str, Any]:
    return {"response": response, "start": start, "end": end, "type": kind, **extra}


class _Lengths:
    """An answer's context: one response, A, of ten characters."""

    def response_lengths(self) -> dict[str, int]:
        return {"A": 10}

    def runs(self) -> dict[int, str]:
        return {}


def test_spans_are_checked_in_shape_and_against_the_responses_text() -> None:
    spans = field_type(SPANS)
    assert spans.answer_error(SPANS, []) is None
    assert spans.answer_error(SPANS, [_span("A", 0, 5), _span("B", 3, 9, "unsafe", note="why")]) is None
    for bad, why in [
        ("A", "must be a list of spans"),
        ([_span("A", 0, 5)] * 4, "at most 3 spans"),
        ([{"response": "A", "start": 0}], "each span needs response, start, end and type (and may have a note)"),
        ([_span("A", 0, 5, extra=1)], "each span needs response, start, end and type (and may have a note)"),
        ([_span("a", 0, 5)], "a span's response is a letter: A, B, …"),
        ([_span("A", 5, 5)], "a span runs from start to a greater end, in characters"),
        ([_span("A", -1, 5)], "a span runs from start to a greater end, in characters"),
        ([_span("A", 0, True)], "a span runs from start to a greater end, in characters"),
        ([_span("A", 0, 5, "typo")], "a span's type is one of ['factual_error', 'unsafe']"),
        ([_span("A", 0, 5, note="x" * 21)], "a span's note is text of at most 20 characters"),
    ]:
        assert spans.answer_error(SPANS, bad) == why, bad
    context = _Lengths()
    assert spans.response_error(SPANS, [_span("A", 0, 10)], context) is None
    assert spans.response_error(SPANS, [_span("A", 0, 11)], context) == "a span runs past the end of response A"
    assert spans.response_error(SPANS, [_span("C", 0, 1)], context) == "there is no response C"
    assert spans.from_form(['{"response": "A", "start": 1, "end": 4, "type": "unsafe"}', ""]) == [
        _span("A", 1, 4, "unsafe")
    ]
    assert spans.answer_error(SPANS, spans.from_form(["{not json"]))
    assert spans.from_form([]) == []


def test_spans_of_several_experts_are_matched_by_overlap() -> None:
    votes = [
        Vote(1, 101, 0.9, {"errors": [_span("A", 10, 40), _span("B", 0, 8, "unsafe")]}),
        Vote(2, 102, 0.8, {"errors": [_span("A", 12, 41)]}),
        Vote(3, 103, 0.7, {"errors": [_span("A", 9, 38, "unsafe"), _span("A", 60, 70)]}),
    ]
    result = field_type(SPANS).aggregate(SPANS, [v.answer["errors"] for v in votes], votes, 7, None)
    # All three marked A 10..40 (one typed it otherwise): kept, typed by weight, median bounds.
    # B 0..8 and A 60..70 were one expert's each: dropped.
    assert result.value == [_span("A", 10, 40)]
    assert result.method["groups"] == 3 and result.method["kept"] == 1 and result.method["n"] == 3
    assert result.share == pytest.approx(2 / 3)  # expert 3's set (wrong type, an extra) disagrees
    nobody = [Vote(1, 101, 0.9, {"errors": []}), Vote(2, 102, 0.8, {"errors": []})]
    assert field_type(SPANS).aggregate(SPANS, [[], []], nobody, 7, None).value == []


def test_span_agreement_and_comparison_with_gold() -> None:
    spans = field_type(SPANS)
    gold = [_span("A", 10, 40), _span("B", 0, 8, "unsafe")]
    assert spans.gold_credit(SPANS, gold, gold) == 1.0
    assert spans.gold_credit(SPANS, [_span("A", 15, 40)], gold) == pytest.approx(2 / 3)
    assert spans.gold_credit(SPANS, [_span("A", 30, 60)], gold) == 0.0  # overlaps too little
    assert spans.matches([], []) and not spans.matches([], gold)
    same = {
        1: [{"errors": gold}, {"errors": gold}],
        2: [{"errors": [_span("A", 0, 5)]}, {"errors": [_span("A", 1, 5)]}],
    }
    apart = {1: [{"errors": gold}, {"errors": []}], 2: [{"errors": []}, {"errors": [_span("A", 0, 5)]}]}
    assert spans.alpha(SPANS, same) == pytest.approx(1.0)
    assert spans.alpha(SPANS, apart) < 0.2  # type: ignore[operator]


def test_the_gate_counts_spans_outside_their_response() -> None:
    spans = field_type(SPANS)
    values = [[_span("A", 0, 10)], [_span("A", 0, 11), _span("B", 0, 1)], None, "x"]
    lengths = [{"A": 10}, {"A": 10}, None, {"A": 10}]
    assert spans.gate_values_in(SPANS, values, lengths) == [0, 2, None, -1]
    assert spans.gate_checks(SPANS)[0].options == {"min_value": 0, "max_value": 0}


def test_simulated_truth_follows_the_planted_faults() -> None:
    from nightshift.simulation.model_answers import find_faults, model_answer

    texts = {label: model_answer(f"model-{label}", "Should we sell the plant?", seed=3).text for label in "ABC"}
    planted = {label: model_answer(f"model-{label}", "Should we sell the plant?", seed=3).faults for label in "ABC"}
    for label, text in texts.items():
        assert [(f.kind, f.start, f.end) for f in find_faults(text)] == [
            (f.kind, f.start, f.end) for f in planted[label]
        ]
    truth = true_answer("hash", [RANKING, SPANS], texts)
    counts = [len(planted[o]) for o in truth["ranking"]]
    assert counts == sorted(counts)  # fewest faults first; equals in the drawn order
    assert truth["errors"] == [
        _span(label, f.start, f.end, f.kind) for label in "ABC" for f in planted[label] if f.kind in SPANS.error_types
    ]


class _Runs:
    """An answer's context holding one answered run (id 7) of a prompt."""

    def response_lengths(self) -> dict[str, int]:
        return {}

    def turns(self, label: str) -> list[tuple[int, str, str]]:
        return [(7, "Say whether the refinancing keeps the covenants.", "They do.")] if label == "rewrite" else []


def test_a_prompt_rewrite_cites_its_run_of_the_very_prompt() -> None:
    label = PromptRewrite(name="rewrite", type="prompt_rewrite", min_length=10, max_length=100)
    kind = field_type(label)
    good = {"prompt": "Say whether the refinancing keeps the covenants.", "run": 7}
    assert kind.answer_error(label, good) is None and kind.response_error(label, good, _Runs()) is None
    assert (
        kind.answer_error(label, {"prompt": good["prompt"]})
        == "run the rewritten prompt against the model before submitting it"
    )
    assert (
        kind.answer_error(label, {"prompt": "short", "run": 7}) == "the rewritten prompt must be 10 to 100 characters"
    )
    assert kind.answer_error(label, "text") == "must be the rewritten prompt and the run that answered it"
    assert kind.response_error(label, {**good, "run": 8}, _Runs()) == "that run is not one of this task's answered runs"
    assert kind.response_error(label, {**good, "prompt": "Edited after the run."}, _Runs()).startswith(
        "the prompt changed"
    )
    assert kind.from_form(["A new prompt", "run:7"]) == {"prompt": "A new prompt", "run": 7}
    assert kind.from_form(["A new prompt"]) == {"prompt": "A new prompt"}
    assert kind.from_form(["A new prompt", "run:x"]) == {"prompt": "A new prompt"}
    assert kind.from_form(["  "]) is None
    assert kind.gate_values(label, [good, None, "x"]) == [len(good["prompt"]), None, -1]
    # Stored with the run's answer, whatever was sent for it.
    assert kind.completed(label, {**good, "answer": "forged"}, _Runs()) == {**good, "answer": "They do."}


# --- chat ---


def test_a_chats_form_is_read_by_place_and_its_gate_counts_rated_turns() -> None:
    kind = field_type(CHAT)
    # The message box, then per turn: its run, its rating, its note (read by place), its marks.
    form = ["Next question", "turn:7", "rating:4", "turn:3 is a note", "mark:unsafe", "turn:9", "rating:", ""]
    assert kind.from_form(form) == {
        "message": "Next question",
        "turns": [
            {"run": 7, "rating": 4, "note": "turn:3 is a note", "marks": ["unsafe"]},
            {"run": 9, "marks": []},
        ],
    }
    assert kind.from_form([""]) is None
    assert (
        kind.answer_error(CHAT, kind.from_form(["", "turn:x"]))
        == "must be the chat's turns, each with its run and rating"
    )
    rated = {"turns": [{"run": 7, "rating": 4}, {"run": 9, "rating": 5}]}
    off_scale = {"turns": [{"run": 7, "rating": 8}]}
    assert kind.gate_values(CHAT, [rated, off_scale, None]) == [2, -1, None]
    assert kind.gate_checks(CHAT)[0].options == {"min_value": 1, "max_value": 2}
    assert kind.answer_error(CHAT, rated) is None
    assert "rate the reply from 1 to 5" in (kind.answer_error(CHAT, off_scale) or "")


def test_a_chat_takes_the_approved_conversation_and_scales_its_ratings() -> None:
    kind = field_type(CHAT)
    mine = {"turns": [{"run": 1, "message": "Q", "reply": "A", "rating": 5, "marks": []}]}
    theirs = {"turns": [{"run": 2, "message": "Q", "reply": "B", "rating": 2, "marks": ["unsafe"]}]}
    assert _aggregate(CHAT, [mine, theirs], approved=(1,)).value == theirs
    assert _aggregate(CHAT, [mine, theirs]).value == mine
    assert kind.dialogue(CHAT, theirs) == [("Q", "B", 0.25, False)]
    truth = kind.true_value(CHAT, random.Random(3))
    asked = kind.runs_to_ask(CHAT, truth)
    assert len(asked) == 2 and all(asked)
    cited = kind.cite(CHAT, truth, [(11, asked[0], "R1"), (12, asked[1], "R2")])
    assert [(t["run"], t["reply"]) for t in cited["turns"]] == [(11, "R1"), (12, "R2")]
    assert kind.runs_to_ask(CHAT, cited) == [] and kind.answer_error(CHAT, cited) is None


# --- graded preference ---

GRADED = GradedPreference(name="better", type="graded_preference", strength=3)


def test_a_graded_preference_is_a_scale_around_a_tie_with_bradley_terry_strengths() -> None:
    kind = field_type(GRADED)
    assert kind.answer_error(GRADED, -3) is None and kind.answer_error(GRADED, 0) is None
    assert kind.answer_error(GRADED, 4) == "must be a whole number from -3 to 3"
    assert kind.from_form(["-2"]) == -2
    # Three experts: the first much prefers A, the second slightly, the third slightly prefers B.
    result = _aggregate(GRADED, [-3, -1, 1])
    assert result.value == -1 and result.method["method"] == "median_with_bradley_terry"
    scores, ci = result.method["scores"], result.method["ci95"]
    assert scores["A"] > 0 > scores["B"] and ci["A"][0] < scores["A"] < ci["A"][1]
    # More and stronger votes for A: a wider margin between the two.
    stronger = _aggregate(GRADED, [-3, -3, -3]).method["scores"]
    assert stronger["A"] - stronger["B"] > scores["A"] - scores["B"]
    assert kind.preferences(GRADED, -1, result.method) == [("A", "B", round(scores["A"] - scores["B"], 4))]
    assert kind.preferences(GRADED, 0, result.method) == []
    assert kind.response_scores(GRADED, -1, result.method) == scores
    assert kind.gate_checks(GRADED)[0].options == {"min_value": -3, "max_value": 3}
    answers = {1: [{"better": -3}, {"better": -3}], 2: [{"better": 2}, {"better": 2}]}
    assert kind.alpha(GRADED, answers) == 1.0
