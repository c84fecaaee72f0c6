from __future__ import annotations

from nightshift.review import aggregate


def test_aggregation_takes_the_median_scale_majority_tags_and_most_reliable_text(sample_spec) -> None:
    answers = [
        (
            1,
            0.9,
            {"rating": 6, "error_tags": ["reasoning_flaw"], "rationale": "best", "improved_prompt": "p1"},
        ),
        (
            2,
            0.6,
            {
                "rating": 5,
                "error_tags": ["reasoning_flaw", "unsafe"],
                "rationale": "b",
                "improved_prompt": "p2",
            },
        ),
        (3, 0.7, {"rating": 2, "error_tags": [], "rationale": "c", "improved_prompt": "p3"}),
    ]
    final, method, agreement = aggregate(answers, sample_spec.project)
    assert final == {
        "rating": 5,
        "error_tags": ["reasoning_flaw"],
        "rationale": "best",
        "improved_prompt": "p1",
    }
    assert method["rating"] == {"method": "median", "mean": 4.333, "spread": 1.700, "n": 3}
    assert method["error_tags"]["votes"] == {"reasoning_flaw": 2, "unsafe": 1}
    # Two of three ratings lie within one step of the median.
    assert agreement == round(2 / 3, 4)


def test_unanimous_answers_agree_fully(sample_spec) -> None:
    same = {"rating": 3, "error_tags": ["unsafe"], "rationale": "r", "improved_prompt": "p"}
    final, _, agreement = aggregate([(1, 0.7, same), (2, 0.7, same)], sample_spec.project)
    assert final["rating"] == 3 and agreement == 1.0
