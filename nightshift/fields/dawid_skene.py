"""Dawid & Skene (1979): each expert's confusion matrix, learnt by EM over a batch of items."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

# The reliability prior counts as this many answers in each expert's confusion matrix.
PRIOR_STRENGTH = 4.0
MAX_ITERATIONS = 50
# Relative change of the log-likelihood between two rounds at which the fit stops.
TOLERANCE = 1e-6


@dataclass(frozen=True)
class DawidSkene:
    """A fitted model: per item the posterior over the options, and how it got there."""

    options: list[str]
    iterations: int
    # The items' posteriors as one items x options array, its rows in the order of item_ids (sorted).
    item_ids: np.ndarray
    matrix: np.ndarray

    @cached_property
    def posteriors(self) -> dict[int, np.ndarray]:
        """Per item id, its posterior over the options (a row of matrix)."""
        return {int(i): self.matrix[n] for n, i in enumerate(self.item_ids)}


def dawid_skene(
    labels: Sequence[tuple[int, int, str]], options: Sequence[str], reliability: Mapping[int, float]
) -> DawidSkene:
    """Fit Dawid & Skene (1979) by EM on (item id, expert id, chosen option) triples.

    Starts from the reliability-weighted vote; each expert's confusion matrix has a Dirichlet prior
    putting their reliability on the diagonal, worth PRIOR_STRENGTH answers.
    """
    index = {option: k for k, option in enumerate(options)}
    rows = [(i, e, index[v]) for i, e, v in labels if v in index]
    k_count = len(options)
    if not rows:
        return DawidSkene(list(options), 0, np.zeros(0, dtype=np.int64), np.zeros((0, k_count)))
    item_ids, item_idx = np.unique(np.array([r[0] for r in rows], dtype=np.int64), return_inverse=True)
    expert_ids, expert_idx = np.unique(np.array([r[1] for r in rows], dtype=np.int64), return_inverse=True)
    chosen = np.array([r[2] for r in rows], dtype=np.int64)
    n_items, n_experts = len(item_ids), len(expert_ids)
    trust = np.clip(np.array([reliability.get(int(e), 0.7) for e in expert_ids]), 0.01, 0.99)
    off = (1 - trust) / max(k_count - 1, 1)
    prior = np.repeat(off[:, None, None], k_count, axis=1).repeat(k_count, axis=2)
    prior[:, np.arange(k_count), np.arange(k_count)] = trust[:, None]
    prior *= PRIOR_STRENGTH
    # Start: reliability-weighted vote shares.
    posterior = np.zeros((n_items, k_count))
    np.add.at(posterior, (item_idx, chosen), trust[expert_idx])
    posterior /= posterior.sum(axis=1, keepdims=True)
    cell = expert_idx * k_count + chosen
    iterations, previous = 0, 0.0
    for iterations in range(1, MAX_ITERATIONS + 1):
        # M step: class priors and each expert's confusion matrix (true class x chosen option).
        class_prior = (posterior.sum(axis=0) + 1) / (n_items + k_count)
        confusion = prior.copy()
        for k in range(k_count):
            counts = np.bincount(cell, weights=posterior[item_idx, k], minlength=n_experts * k_count)
            confusion[:, k, :] += counts.reshape(n_experts, k_count)
        log_confusion = np.log(confusion / confusion.sum(axis=2, keepdims=True))
        # E step: each item's posterior from every answer it got.
        log_post = np.tile(np.log(class_prior), (n_items, 1))
        for k in range(k_count):
            log_post[:, k] += np.bincount(item_idx, weights=log_confusion[expert_idx, k, chosen], minlength=n_items)
        top = log_post.max(axis=1, keepdims=True)
        posterior = np.exp(log_post - top)
        total = posterior.sum(axis=1, keepdims=True)
        posterior /= total
        # Converged when the data's log-likelihood (each item's answers, summed over its classes)
        # stops moving. The largest change of any one posterior never settled under 1e-6 on a
        # batch-sized fit, so every fit ran all 50 rounds; this stops far sooner with the
        # same answer for all but a handful of near-ties.
        likelihood = float((np.log(total) + top).sum())
        if iterations > 1 and abs(likelihood - previous) <= TOLERANCE * abs(previous):
            break
        previous = likelihood
    return DawidSkene(list(options), iterations, item_ids, posterior)
