"""Aggregation by field type, and Dawid-Skene against majority vote on experts of known accuracy."""

from __future__ import annotations

import random

import pytest

from nightshift.fields.dawid_skene import MAX_ITERATIONS, dawid_skene
from nightshift.projects.spec import ProjectBody
from nightshift.review.aggregate import Vote, aggregate, aggregate_items

OPTIONS = ["approve", "revise", "reject", "escalate", "unclear"]


def _project(sample_spec, aggregation: str = "dawid_skene") -> ProjectBody:
    body = sample_spec.project.model_dump()
    body["labels"] = [
        {"name": "verdict", "type": "single_choice", "options": OPTIONS, "aggregation": aggregation},
        {"name": "preferred", "type": "pairwise_preference"},
        {"name": "rationale", "type": "free_text"},
    ]
    return ProjectBody.model_validate(body)


def test_aggregation_takes_the_median_scale_majority_tags_and_most_reliable_text(sample_spec) -> None:
    votes = [
        Vote(1, 11, 0.9, {"rating": 6, "error_tags": ["reasoning_flaw"], "rationale": "best", "improved_prompt": "p1"}),
        Vote(
            2,
            12,
            0.6,
            {"rating": 5, "error_tags": ["reasoning_flaw", "unsafe"], "rationale": "b", "improved_prompt": "p2"},
        ),
        Vote(3, 13, 0.7, {"rating": 2, "error_tags": [], "rationale": "c", "improved_prompt": "p3"}),
    ]
    result = aggregate(votes, sample_spec.project)
    assert result.answer == {
        "rating": 5,
        "error_tags": ["reasoning_flaw"],
        "rationale": "best",
        "improved_prompt": "p1",
    }
    assert result.method["rating"] == {"method": "median", "mean": 4.333, "spread": 1.700, "n": 3}
    assert result.method["error_tags"]["votes"] == {"reasoning_flaw": 2, "unsafe": 1}
    assert result.method["rationale"]["method"] == "most_reliable_annotator"
    # Two of three ratings lie within one step of the median.
    assert result.agreement == round(2 / 3, 4)


def test_free_text_takes_the_reviewer_approved_text_over_a_more_reliable_unreviewed_one(sample_spec) -> None:
    answer = {"rating": 3, "error_tags": [], "improved_prompt": "p"}
    votes = [
        Vote(1, 11, 0.95, {**answer, "rationale": "unreviewed"}),
        Vote(2, 12, 0.6, {**answer, "rationale": "approved"}, approved=True),
    ]
    result = aggregate(votes, sample_spec.project)
    assert result.answer["rationale"] == "approved"
    assert result.method["rationale"] == {"method": "reviewer_approved_best", "approved": 1, "n": 2}


def test_pairwise_preference_takes_the_majority_and_a_draw_is_a_tie(sample_spec) -> None:
    project = _project(sample_spec, "majority_vote")

    def preferred(*choices: str) -> tuple[str | None, float]:
        votes = [Vote(n, n, 0.7, {"verdict": "approve", "preferred": c}) for n, c in enumerate(choices)]
        result = aggregate(votes, project)
        return result.answer["preferred"], result.method["preferred"]["votes"]

    assert preferred("A", "A", "B")[0] == "A"
    assert preferred("A", "B")[0] == "tie"
    assert preferred("A", "B", "tie", "tie")[0] == "tie"
    assert preferred("B", "tie", "B") == ("B", {"B": 2, "tie": 1})


def _simulate(rng: random.Random, items: int, good: int, poor: int) -> tuple[dict[int, str], dict[int, list[Vote]]]:
    """Items with a known true verdict; three experts each from a pool where `poor` experts answer
    at random and `good` ones are right 85% of the time."""
    accuracy = {e: 0.85 for e in range(good)} | {e: 0.0 for e in range(good, good + poor)}
    truth = {i: rng.choice(OPTIONS) for i in range(items)}
    votes: dict[int, list[Vote]] = {}
    submission = 0
    for item, true in truth.items():
        votes[item] = []
        for expert in rng.sample(sorted(accuracy), 3):
            submission += 1
            answer = true if rng.random() < accuracy[expert] else rng.choice(OPTIONS)
            # Nobody knows yet who is good: every expert comes with the same prior reliability.
            votes[item].append(Vote(submission, expert, 0.7, {"verdict": answer, "preferred": "A"}))
    return truth, votes


def test_dawid_skene_is_more_accurate_than_majority_vote_when_some_experts_are_poor(sample_spec) -> None:
    truth, votes = _simulate(random.Random(7), items=2000, good=12, poor=8)
    accuracy = {}
    for method in ("majority_vote", "dawid_skene"):
        results = aggregate_items(votes, _project(sample_spec, method))
        accuracy[method] = sum(results[i].answer["verdict"] == truth[i] for i in truth) / len(truth)
        assert {r.method["verdict"]["method"] for r in results.values()} == {method}
    # Majority vote is fooled whenever two random experts outvote or split a good one.
    assert accuracy["dawid_skene"] >= accuracy["majority_vote"] + 0.04, accuracy
    assert accuracy["dawid_skene"] > 0.85, accuracy


def _three_seats(items: int, experts_per_seat: int) -> list[tuple[int, int, str]]:
    """Each item answered from three seats: always right, right 90% of the time, at random."""
    rng = random.Random(3)
    labels = []
    for item in range(items):
        true = rng.choice(OPTIONS)
        seat = item % experts_per_seat
        labels += [
            (item, 1 + seat, true),
            (item, 1 + experts_per_seat + seat, true if rng.random() < 0.9 else "unclear"),
            (item, 1 + 2 * experts_per_seat + seat, rng.choice(OPTIONS)),
        ]
    return labels


def test_dawid_skene_learns_who_is_poor_and_its_prior_is_the_experts_reliability() -> None:
    labels = _three_seats(600, 1)
    model = dawid_skene(labels, OPTIONS, {1: 0.7, 2: 0.7, 3: 0.7})
    assert model.iterations >= 2 and len(model.posteriors) == 600
    # With nothing but priors (one item, one answer each), the more reliable expert wins.
    alone = dawid_skene([(1, 1, "approve"), (1, 2, "reject")], OPTIONS, {1: 0.95, 2: 0.6})
    assert OPTIONS[int(alone.posteriors[1].argmax())] == "approve"
    swapped = dawid_skene([(1, 1, "approve"), (1, 2, "reject")], OPTIONS, {1: 0.6, 2: 0.95})
    assert OPTIONS[int(swapped.posteriors[1].argmax())] == "reject"
    assert float(alone.posteriors[1].sum()) == pytest.approx(1.0)


def test_dawid_skene_stops_once_the_likelihood_settles_not_at_the_round_limit() -> None:
    # 20,000 items from 150 experts: the largest single posterior change never settles under the
    # tolerance, so a per-posterior criterion ran every fit to MAX_ITERATIONS.
    labels = _three_seats(20_000, 50)
    model = dawid_skene(labels, OPTIONS, {})
    assert 2 <= model.iterations < MAX_ITERATIONS


def test_single_choice_defaults_to_dawid_skene_and_keeps_the_majority_beside_it(sample_spec) -> None:
    votes = [Vote(n, n, 0.7, {"verdict": v, "preferred": "A"}) for n, v in enumerate(["revise", "revise", "reject"])]
    result = aggregate(votes, _project(sample_spec))
    method = result.method["verdict"]
    assert result.answer["verdict"] == "revise" and method["method"] == "dawid_skene"
    assert method["majority"] == "revise" and method["votes"] == {"revise": 2, "reject": 1}
    assert 0.5 < method["posterior"] <= 1 and result.agreement == round((2 / 3 + 1) / 2, 4)
