"""Krippendorff's alpha against published worked examples; the pasted-text and reading-time checks."""

from __future__ import annotations

import re

import pytest

from nightshift.fields.alpha import alpha
from nightshift.review.agreement import _copy_key, field_alphas, normalised_text, pasted_texts, plausible_seconds

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: four observers,
# twelve units, values 1..5, with missing values. Published: nominal 0.743, ordinal 0.815.
OBSERVERS = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]
UNITS = [list(values) for values in zip(*OBSERVERS, strict=True)]


@pytest.mark.parametrize(("level", "published"), [("nominal", 0.743), ("ordinal", 0.815)])
def test_alpha_matches_krippendorffs_worked_example(level: str, published: float) -> None:
    assert alpha(UNITS, [1, 2, 3, 4, 5], level) == pytest.approx(published, abs=0.0005)


def test_alpha_of_perfect_agreement_is_one_and_of_no_variation_is_not_measurable() -> None:
    assert alpha([[1, 1], [2, 2, 2], [3, 3]], [1, 2, 3], "nominal") == 1.0
    # Every answer the same: no disagreement could be expected, so alpha says nothing.
    assert alpha([[2, 2], [2, 2]], [1, 2, 3], "nominal") is None
    # Units with a single answer pair with nothing.
    assert alpha([[1], [2]], [1, 2, 3], "nominal") is None


def test_field_alphas_use_ordinal_for_scales_and_tag_presence_for_multi_choice(sample_spec) -> None:
    project = sample_spec.project
    answers = {
        1: [{"rating": 6, "error_tags": ["unsafe"]}, {"rating": 6, "error_tags": ["unsafe"]}],
        2: [{"rating": 2, "error_tags": []}, {"rating": 2, "error_tags": []}],
        3: [{"rating": 4, "error_tags": ["unsafe"]}, {"rating": 5, "error_tags": []}],
    }
    alphas = field_alphas(answers, project)
    assert set(alphas) == {"rating", "error_tags"}  # free text has no alpha
    assert 0.8 < alphas["rating"] < 1  # one step apart on one item: ordinal forgives it a little
    assert alphas["error_tags"] is not None and alphas["error_tags"] < alphas["rating"]


def test_identical_free_text_from_two_experts_is_flagged_on_both_but_not_one_experts_own_repeat(sample_spec) -> None:
    text = "The answer ignores the covenant in the loan agreement entirely, which changes the advice."
    rows = [
        {"submission_id": 1, "expert_id": 10, "answer": {"rationale": text}},
        {"submission_id": 2, "expert_id": 11, "answer": {"rationale": "  " + text.upper() + "!"}},
        {
            "submission_id": 3,
            "expert_id": 12,
            "answer": {"rationale": "Something else entirely, and long enough to count."},
        },
        {
            "submission_id": 4,
            "expert_id": 12,
            "answer": {"rationale": "Something else entirely, and long enough to count."},
        },
        {"submission_id": 5, "expert_id": 13, "answer": {"rationale": "short"}},
        {"submission_id": 6, "expert_id": 14, "answer": {"rationale": "short"}},
    ]
    assert pasted_texts(rows, sample_spec.project) == {1: "rationale", 2: "rationale"}


def test_plausible_time_grows_with_the_text_to_read() -> None:
    assert plausible_seconds(0, 60, 40) == 60
    assert plausible_seconds(4_000, 60, 40) == 160
    assert plausible_seconds(4_000, 1, None) == 1


@pytest.mark.parametrize(
    "text",
    [
        "  The Answer, misreads: the TERMS!! ",
        "tabs\tand\nnew lines -- and__underscores_ 42",
        "Café — naïve “quotes” and ß",
        "hello — world",
        "...",
        "",
    ],
)
def test_normalised_text_matches_the_regex_definition(text: str) -> None:
    # The byte-table fast path for ASCII must agree with the plain definition on every text.
    assert normalised_text(text) == re.sub(r"\W+", " ", text.lower()).strip().encode()
    # The cheaper grouping key is the normalised text without its spaces, ASCII or not.
    assert _copy_key(text) == normalised_text(text).replace(b" ", b"")


def test_texts_sharing_a_key_but_not_their_words_are_not_copies(sample_spec) -> None:
    # Same letters, split differently: the same grouping key, different texts once normalised.
    texts = ["The model misreads the covenant terms entirely", "The model mis reads the cove nant terms entirely"]
    rows = [{"submission_id": n, "expert_id": 10 + n, "answer": {"rationale": t}} for n, t in enumerate(texts, 1)]
    assert _copy_key(texts[0]) == _copy_key(texts[1])
    assert pasted_texts(rows, sample_spec.project) == {}


def test_copies_match_across_ascii_and_unicode_punctuation(sample_spec) -> None:
    text = "The model misreads the covenant terms - it treats them as optional"
    rows = [
        {"submission_id": 1, "expert_id": 10, "answer": {"rationale": text}},
        {"submission_id": 2, "expert_id": 11, "answer": {"rationale": text.replace(" - ", " — ").upper()}},
        {"submission_id": 3, "expert_id": 12, "answer": {"rationale": text + " entirely"}},
    ]
    assert pasted_texts(rows, sample_spec.project) == {1: "rationale", 2: "rationale"}
