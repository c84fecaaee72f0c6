"""The expert-quality model: a Beta posterior of each expert's accuracy, and the decisions taken on it.

Every judged answer is evidence: credit in [0, 1] (a gold answer scored field by field with partial
credit, agreement with a final answer the expert's own vote did not decide, a reviewer's verdict)
with a weight saying how much it is worth. The posterior is Beta(PRIOR_RIGHT + credit,
PRIOR_WRONG + weight - credit): a new expert starts near the prior's mean and moves with evidence.

A pause is a decision on the posterior, not on a raw rate: an expert is paused once the probability
that their accuracy is under the project's floor passes PAUSE_CONFIDENCE. Few answers leave the
posterior wide, so one unlucky miss never pauses anyone; a random answerer's misses pile up fast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

# The prior: worth five answers, four of them right (a vetted expert is mostly right).
PRIOR_RIGHT = 4.0
PRIOR_WRONG = 1.0
# A pause needs this much certainty that the expert is under the floor.
PAUSE_CONFIDENCE = 0.9
# Agreement with other experts' answer is weaker evidence than a known answer.
GOLD_WEIGHT = 1.0
AGREEMENT_WEIGHT = 1.0
# A missed deadline counts as a wrong answer.
MISS_WEIGHT = 1.0


@dataclass(frozen=True)
class Quality:
    """What is known of one expert: credit earned over the weight of the answers judged."""

    credit: float = 0.0
    weight: float = 0.0

    def plus(self, credit: float, weight: float = 1.0) -> Quality:
        return Quality(self.credit + credit * weight, self.weight + weight)

    @property
    def alpha(self) -> float:
        return PRIOR_RIGHT + self.credit

    @property
    def beta(self) -> float:
        return PRIOR_WRONG + self.weight - self.credit

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)

    def p_below(self, floor: float) -> float:
        """The posterior probability that the expert's accuracy is under floor."""
        from scipy.special import betainc

        return float(betainc(self.alpha, self.beta, min(max(floor, 0.0), 1.0)))

    def interval(self, mass: float = 0.9) -> tuple[float, float]:
        """The central credible interval holding `mass` of the posterior: what ops read as "between"."""
        from scipy.special import betaincinv

        tail = (1 - mass) / 2
        low, high = betaincinv(self.alpha, self.beta, [tail, 1 - tail])
        return float(low), float(high)

    def should_pause(self, floor: float, confidence: float = PAUSE_CONFIDENCE) -> bool:
        return self.p_below(floor) > confidence

    def with_peers(self, observations: Sequence[PeerObservation]) -> Quality:
        """This posterior updated by answers on items not settled yet, each judged against the
        other experts' votes there: the expert answered right with probability q, or wrong (any of
        the other answers alike), and the others' votes say how likely the answer is right. Without
        them, a random answerer's disagreements would count only once a third vote settled each
        item, while the items where they happened to agree counted at once.

        The update is not conjugate: the posterior is computed on a grid and returned as the Beta
        with the same mean and variance, so pausing, intervals and reliability read it as any other."""
        if not observations:
            return self
        import numpy as np

        grid = _grid()
        logp = (self.alpha - 1) * np.log(grid) + (self.beta - 1) * np.log1p(-grid)
        right = np.fromiter((o.right for o in observations), float, len(observations))[:, None]
        chance = np.fromiter((o.chance for o in observations), float, len(observations))[:, None]
        logp = logp + np.log(right * grid + (1 - right) * (1 - grid) * chance + 1e-12).sum(axis=0)
        weights = np.exp(logp - logp.max())
        weights /= weights.sum()
        mean = float((weights * grid).sum())
        variance = float((weights * (grid - mean) ** 2).sum())
        size = max(mean * (1 - mean) / max(variance, 1e-9) - 1, 0.1)
        alpha, beta = max(mean * size, 0.05), max((1 - mean) * size, 0.05)
        return Quality(alpha - PRIOR_RIGHT, alpha + beta - PRIOR_RIGHT - PRIOR_WRONG)


def posterior(
    gold: tuple[float, float],
    agreement: tuple[float, float],
    reviews: tuple[float, float] = (0.0, 0.0),
    missed: int = 0,
    peers: Sequence[PeerObservation] = (),
) -> Quality:
    """The one way evidence becomes a posterior, each kind a (credit, answers judged) pair: gold,
    agreement with final answers, review verdicts; missed deadlines count as wrong answers; answers
    on open items update it last (with_peers)."""
    credit = GOLD_WEIGHT * gold[0] + AGREEMENT_WEIGHT * (agreement[0] + reviews[0])
    weight = GOLD_WEIGHT * gold[1] + AGREEMENT_WEIGHT * (agreement[1] + reviews[1]) + MISS_WEIGHT * missed
    return Quality(credit, weight).with_peers(peers)


@dataclass(frozen=True, slots=True)
class PeerObservation:
    """One answer on an item not settled yet: the probability, from the other experts' votes and
    their qualities, that it is right; and the chance that a wrong answerer gives this very answer
    (1 / (alternatives - 1))."""

    right: float
    chance: float


@cache
def _grid() -> Any:
    """The posterior's grid, built on first use: importing the quality model stays free of numpy."""
    import numpy as np

    return np.linspace(0.0025, 0.9975, 200)


def candidate_posterior(
    votes: Sequence[tuple[object, float]], alternatives: int
) -> tuple[object | None, float, dict[object, float]]:
    """Which answer is right, and how sure: each vote (answer, its expert's accuracy) under the
    one-coin model, where an expert says the truth with probability q and otherwise any of the
    other alternatives-1 answers alike.

    Returns (the most probable answer, its probability, every voted answer's probability). An answer
    nobody gave still holds probability: with two votes apart, neither can be sure.
    """
    answers = list(dict.fromkeys(answer for answer, _ in votes))
    if not answers:
        return None, 0.0, {}
    k = max(alternatives, len(answers), 2)
    # Each vote's two logs once (run for every compared field of every item): when it names the
    # candidate, and when it names another. Summed in the votes' order, as ever.
    terms = []
    for answer, q in votes:
        q = min(max(q, 1e-3), 1 - 1e-3)
        terms.append((answer, math.log(q), math.log((1 - q) / (k - 1))))
    logs: dict[object, float] = {}
    for candidate in answers:
        total = 0.0
        for answer, right, wrong in terms:
            total += right if answer == candidate else wrong
        logs[candidate] = total
    unseen = sum(wrong for _, _, wrong in terms)
    top = max([*logs.values(), unseen])
    weights = {a: math.exp(v - top) for a, v in logs.items()}
    rest = (k - len(answers)) * math.exp(unseen - top)
    norm = sum(weights.values()) + rest
    shares = {a: w / norm for a, w in weights.items()}
    best = max(answers, key=lambda a: (shares[a], -answers.index(a)))
    return best, shares[best], shares


def final_shares(owners: Any, codes: Any, weights: Any, finals: Any, alternatives: int) -> Any:
    """candidate_posterior's probability of each item's final answer, for a whole batch at once.
    owners, codes, weights: per vote its item's position, its answer as a whole number (equal
    answers alike) and its expert's accuracy; finals: per item its final answer's code (-1: none
    of its votes). The sums run in another order than candidate_posterior's: equal to rounding."""
    import numpy as np

    items = len(finals)
    if not len(codes):
        return np.zeros(items)
    width = int(codes.max()) + 1
    pairs, first, pair_of = np.unique(owners * width + codes, return_index=True, return_inverse=True)
    holder = owners[first]
    distinct = np.bincount(holder, minlength=items)
    k = np.maximum(np.maximum(distinct, alternatives), 2)
    q = np.clip(weights, 1e-3, 1 - 1e-3)
    right = np.log(q)
    wrong = np.log((1 - q) / (k[owners] - 1))
    # A candidate's log: every vote naming another answer, then those naming it swapped to right.
    unseen = np.bincount(owners, weights=wrong, minlength=items)
    logs = unseen[holder] + np.bincount(pair_of, weights=right - wrong, minlength=len(pairs))
    top = unseen.copy()
    np.maximum.at(top, holder, logs)
    named = np.exp(logs - top[holder])
    norm = np.bincount(holder, weights=named, minlength=items) + (k - distinct) * np.exp(unseen - top)
    final_pair = np.searchsorted(pairs, np.arange(items) * width + finals)
    final_pair = np.minimum(final_pair, len(pairs) - 1)
    found = (finals >= 0) & (pairs[final_pair] == np.arange(items) * width + finals)
    return np.where(found, named[final_pair] / norm, 0.0)
