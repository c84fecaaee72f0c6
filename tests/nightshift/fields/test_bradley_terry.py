"""Bradley-Terry strengths: the same as choix's on the same comparisons, weights counted as repeats,
and intervals that hold the strengths the comparisons were drawn from."""

from __future__ import annotations

import math
import random

import choix
import numpy as np
import pytest

from nightshift.fields import bradley_terry
from nightshift.fields.bradley_terry import PRIOR, fit, kendalls_w, ranking_comparisons


def _drawn(strengths: list[float], count: int, seed: int) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        a, b = rng.sample(range(len(strengths)), 2)
        a_wins = rng.random() < bradley_terry.win_probability(strengths[a], strengths[b])
        pairs.append((a, b) if a_wins else (b, a))
    return pairs


@pytest.mark.parametrize(
    ("n", "pairs"),
    [
        (5, _drawn([1.0, 0.5, 0.0, -0.5, -1.0], 60, seed=3)),
        # Unanimous: three experts put the same one of three first. The prior keeps it finite.
        (3, [(0, 1), (0, 2), (1, 2)] * 3),
        # A thing never compared stays at the mean.
        (4, [(0, 1), (1, 2), (0, 2), (2, 0)]),
    ],
)
def test_the_same_strengths_as_choix_on_the_same_comparisons(n: int, pairs: list[tuple[int, int]]) -> None:
    ours = fit(n, [(w, loser, 1.0) for w, loser in pairs])
    reference = choix.opt_pairwise(n, pairs, alpha=PRIOR, tol=1e-10)
    reference = reference - reference.mean()
    assert np.allclose(ours.scores, reference, atol=1e-5), (ours.scores, reference)
    assert ours.order() == sorted(range(n), key=lambda k: (-round(float(reference[k]), 9), k))


def test_a_weight_counts_as_that_many_repeats() -> None:
    pairs = [(0, 1), (1, 2), (2, 0), (0, 2)]
    weighted = fit(3, [(w, loser, 3.0 if (w, loser) == (0, 1) else 1.0) for w, loser in pairs])
    repeated = fit(3, [(w, loser, 1.0) for w, loser in [*pairs, (0, 1), (0, 1)]])
    assert np.allclose(weighted.scores, repeated.scores, atol=1e-9)
    assert weighted.comparisons == 6.0


def test_intervals_hold_the_drawn_strengths_and_narrow_with_more_comparisons() -> None:
    truth = [0.8, 0.2, -0.3, -0.7]
    covered = 0
    for seed in range(40):
        drawn = fit(4, [(w, loser, 1.0) for w, loser in _drawn(truth, 1000, seed=seed)], prior=1e-6)
        covered += sum(drawn.low[k] <= value <= drawn.high[k] for k, value in enumerate(truth))
    # 95% intervals: about 152 of 160 hold the strength drawn from.
    assert 0.88 <= covered / 160 <= 0.995
    few = fit(4, [(w, loser, 1.0) for w, loser in _drawn(truth, 200, seed=1)], prior=1e-6)
    many = fit(4, [(w, loser, 1.0) for w, loser in _drawn(truth, 5000, seed=2)], prior=1e-6)
    for k in range(4):
        assert (many.high[k] - many.low[k]) < (few.high[k] - few.low[k]) / 3
    assert many.order() == [0, 1, 2, 3]


def test_no_comparisons_leaves_every_strength_at_the_mean_within_the_prior() -> None:
    none = fit(3, [])
    assert none.scores == [0.0, 0.0, 0.0]
    # The prior alone, less the one degree the centring takes.
    assert none.high[0] == pytest.approx(1.959963984540054 * math.sqrt((1 - 1 / 3) / (2 * PRIOR)))


def test_a_ranking_orders_every_pair_and_kendalls_w_measures_concordance() -> None:
    assert ranking_comparisons([2, 0, 1], 0.5) == [(2, 0, 0.5), (2, 1, 0.5), (0, 1, 0.5)]
    assert kendalls_w([[0, 1, 2], [0, 1, 2], [0, 1, 2]], 3) == 1.0
    assert kendalls_w([[0, 1, 2], [2, 1, 0]], 3) == 0.0
    assert 0 < kendalls_w([[0, 1, 2], [1, 0, 2]], 3) < 1  # type: ignore[operator]
    assert kendalls_w([[0, 1, 2]], 3) is None
