"""Bradley-Terry strengths from pairwise comparisons, each weighed (by its expert's quality), with
95% intervals.

The maximum a posteriori estimate under a Gaussian prior on the log-strengths (choix's `alpha`
penalty, alpha * sum(theta^2)): the prior keeps a unanimous comparison's strengths finite, which
the plain likelihood sends to infinity when three experts all put the same response first. choix
(the reference implementation: tests/nightshift/fields/test_bradley_terry.py compares the two on
the same comparisons) takes neither weights nor gives intervals, hence this Newton's method.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# The prior's strength (choix's alpha): a log-strength's prior standard deviation is
# 1 / sqrt(2 * PRIOR), about 2.2, wide enough that a few comparisons move it.
PRIOR = 0.1
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Strengths:
    """Log-strengths (mean zero) of the compared things by index, each with a 95% interval."""

    scores: list[float]
    low: list[float]
    high: list[float]
    comparisons: float

    def order(self) -> list[int]:
        """Indices, strongest first; equal scores keep their index order."""
        return sorted(range(len(self.scores)), key=lambda k: (-round(self.scores[k], 9), k))


def fit(n: int, comparisons: Sequence[tuple[int, int, float]], prior: float = PRIOR, max_iter: int = 100) -> Strengths:
    """comparisons: (winner, loser, weight) by index in range(n)."""
    theta = np.zeros(n)
    if comparisons:
        won = np.array([c[0] for c in comparisons], dtype=np.int64)
        lost = np.array([c[1] for c in comparisons], dtype=np.int64)
        weight = np.array([max(float(c[2]), 0.0) for c in comparisons])
    else:
        won = lost = np.zeros(0, dtype=np.int64)
        weight = np.zeros(0)

    def objective(t: np.ndarray) -> float:
        return float(np.sum(weight * np.logaddexp(0.0, -(t[won] - t[lost]))) + prior * np.dot(t, t))

    def curvature(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = 1.0 / (1.0 + np.exp(-(t[won] - t[lost])))  # the winner's chance to win
        pull = weight * (1.0 - p)
        grad = 2.0 * prior * t
        np.add.at(grad, won, -pull)
        np.add.at(grad, lost, pull)
        c = weight * p * (1.0 - p)
        hess = 2.0 * prior * np.eye(n)
        np.add.at(hess, (won, won), c)
        np.add.at(hess, (lost, lost), c)
        np.add.at(hess, (won, lost), -c)
        np.add.at(hess, (lost, won), -c)
        return grad, hess

    current = objective(theta)
    for _ in range(max_iter):
        grad, hess = curvature(theta)
        step = np.linalg.solve(hess, grad)
        # Newton's step, halved while it would not lower the objective (it is convex; halving ends).
        scale = 1.0
        while scale > 1e-6:
            trial = theta - scale * step
            value = objective(trial)
            if value <= current + 1e-12:
                break
            scale /= 2
        theta, current = trial, value
        if float(np.max(np.abs(scale * step), initial=0.0)) < 1e-10:
            break
    _, hess = curvature(theta)
    # The intervals of the centred scores: a shift of every strength changes no comparison, so the
    # spread along it (the prior's alone) is projected out.
    centre = np.eye(n) - 1.0 / n if n else np.eye(0)
    spread = np.sqrt(np.clip(np.diag(centre @ np.linalg.inv(hess) @ centre), 0.0, None))
    scores = theta - theta.mean() if n else theta
    return Strengths(
        scores=[float(s) for s in scores],
        low=[float(s - Z95 * e) for s, e in zip(scores, spread, strict=True)],
        high=[float(s + Z95 * e) for s, e in zip(scores, spread, strict=True)],
        comparisons=float(weight.sum()),
    )


def ranking_comparisons(ranking: Sequence[int], weight: float) -> list[tuple[int, int, float]]:
    """A ranking (indices, best first) broken into the pairs it orders: each above beats each below."""
    return [(ranking[i], ranking[j], weight) for i in range(len(ranking)) for j in range(i + 1, len(ranking))]


def kendalls_w(rankings: Sequence[Sequence[int]], n: int) -> float | None:
    """Kendall's coefficient of concordance of full rankings of n things: 1 when every ranking is
    the same, 0 when they cancel out; None with fewer than two rankings."""
    m = len(rankings)
    if m < 2 or n < 2:
        return None
    sums = np.zeros(n)
    for ranking in rankings:
        for place, k in enumerate(ranking):
            sums[k] += place + 1
    spread = float(np.sum((sums - sums.mean()) ** 2))
    return round(12.0 * spread / (m * m * (n**3 - n)), 6)


def win_probability(a: float, b: float) -> float:
    """The chance that a thing of log-strength a is preferred to one of b."""
    return 1.0 / (1.0 + math.exp(b - a))
