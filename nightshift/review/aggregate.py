"""Aggregation: each item's accepted answers become one final answer per field, with the method kept.

By field type: an ordinal scale takes the median (mean and spread kept); a single choice takes
Dawid-Skene's most probable class (or the majority vote, as the spec says); multi choice votes per
tag; a pairwise preference takes the majority, a tie when A and B draw; free text takes the
reviewer-approved text of the most reliable annotator.

Dawid-Skene is fitted over every item of the call at once (a batch), not item by item: it learns
each expert's confusion matrix from all their answers. Its prior comes from each expert's
reliability, so an expert with little work in the batch is judged by their record.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nightshift.projects.spec import FreeText, MultiChoice, OrdinalScale, PairwisePreference, ProjectBody, SingleChoice

# The reliability prior counts as this many answers in each expert's confusion matrix.
PRIOR_STRENGTH = 4.0
MAX_ITERATIONS = 50
# Relative change of the log-likelihood between two rounds at which the fit stops.
TOLERANCE = 1e-6


@dataclass(frozen=True)
class Vote:
    """One accepted annotation of an item."""

    submission_id: int
    expert_id: int
    reliability: float
    answer: Mapping[str, Any]
    # A reviewer approved it (or corrected it: the answer is then the correction).
    approved: bool = False


@dataclass(frozen=True)
class Aggregate:
    answer: dict[str, Any]
    method: dict[str, Any]
    # Share of experts agreeing with the final answer, averaged over the fields that have one.
    agreement: float
    # Per compared field (free text never is): the share of experts agreeing with the final answer.
    # Below 1, the item's experts disagree on that field.
    fields: dict[str, float]


@dataclass(frozen=True)
class DawidSkene:
    """A fitted model: per item the posterior over the options, and how it got there."""

    posteriors: dict[int, np.ndarray]
    options: list[str]
    iterations: int


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
        return DawidSkene({}, list(options), 0)
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
        # batch of 40,000 items, so every fit ran all 50 rounds; this stops after ~20 with the
        # same answer for all but a handful of near-ties.
        likelihood = float((np.log(total) + top).sum())
        if iterations > 1 and abs(likelihood - previous) <= TOLERANCE * abs(previous):
            break
        previous = likelihood
    return DawidSkene({int(i): posterior[n] for n, i in enumerate(item_ids)}, list(options), iterations)


def aggregate_items(votes: Mapping[int, Sequence[Vote]], project: ProjectBody) -> dict[int, Aggregate]:
    """Final answers for these items (item id → its accepted votes)."""
    models: dict[str, DawidSkene] = {}
    reliability = {v.expert_id: v.reliability for vs in votes.values() for v in vs}
    for label in project.labels:
        if isinstance(label, SingleChoice) and label.aggregation == "dawid_skene":
            triples = [
                (item_id, v.expert_id, v.answer[label.name])
                for item_id, vs in votes.items()
                for v in vs
                if v.answer.get(label.name) is not None
            ]
            models[label.name] = dawid_skene(triples, label.options, reliability)
    per_tag = {label.name for label in project.labels if isinstance(label, MultiChoice)}
    return {item_id: _aggregate_item(item_id, vs, project, models, per_tag) for item_id, vs in votes.items()}


def aggregate(votes: Sequence[Vote], project: ProjectBody) -> Aggregate:
    """One item on its own (Dawid-Skene then rests on the experts' reliability alone)."""
    return aggregate_items({0: votes}, project)[0]


def _aggregate_item(
    item_id: int,
    votes: Sequence[Vote],
    project: ProjectBody,
    models: Mapping[str, DawidSkene],
    per_tag: set[str],
) -> Aggregate:
    """per_tag: the multi-choice fields, kept out of the item's agreement."""
    final: dict[str, Any] = {}
    method: dict[str, Any] = {}
    fields: dict[str, float] = {}
    # Most reliable first: ties and free text go their way.
    ranked = sorted(votes, key=lambda v: (-v.reliability, v.submission_id))
    for label in project.labels:
        present = [v.answer[label.name] for v in ranked if v.answer.get(label.name) is not None]
        if isinstance(label, OrdinalScale):
            nums = sorted(int(v) for v in present)
            count, total = len(nums), sum(nums)
            half = count // 2
            median = (nums[half] if count % 2 else (nums[half - 1] + nums[half]) / 2) if nums else None
            final[label.name] = int(median + 0.5) if median is not None else None
            method[label.name] = {
                "method": "median",
                "mean": round(total / count, 3) if nums else None,
                # The population deviation from integer sums, exact up to the square root:
                # statistics.pstdev's fractions cost more than the rest of the item put together.
                "spread": round(math.sqrt(count * sum([n * n for n in nums]) - total * total) / count, 3)
                if count > 1
                else 0.0,
                "n": count,
            }
            if median is not None:
                fields[label.name] = len([n for n in nums if abs(n - median) <= 1]) / count
        elif isinstance(label, MultiChoice):
            counts = Counter(tag for v in present for tag in v)
            final[label.name] = sorted(t for t, c in counts.items() if c * 2 > len(present))
            method[label.name] = {"method": "per_tag_majority", "votes": dict(counts), "n": len(present)}
            if present:
                # Only for telling disagreement: tag sets rarely match exactly, so it stays out of the mean.
                chosen = final[label.name]
                fields[label.name] = len([v for v in present if sorted(v) == chosen]) / len(present)
        elif isinstance(label, FreeText):
            approved = [v.answer[label.name] for v in ranked if v.approved and v.answer.get(label.name) is not None]
            final[label.name] = approved[0] if approved else (present[0] if present else None)
            method[label.name] = {
                "method": "reviewer_approved_best" if approved else "most_reliable_annotator",
                "approved": len(approved),
                "n": len(present),
            }
        elif isinstance(label, PairwisePreference):
            counts = Counter(present)
            final[label.name], share = _preference(counts, label.options)
            method[label.name] = {"method": "majority_with_ties", "votes": dict(counts), "n": len(present)}
            if present:
                fields[label.name] = share
        else:
            counts = Counter(present)
            top = max(counts.values()) if counts else 0
            # Ties go to the choice of the most reliable expert among the tied.
            majority = next((v for v in present if counts[v] == top), None)
            model = models.get(label.name)
            posterior = model.posteriors.get(item_id) if model else None
            if model is not None and posterior is not None:
                best = int(posterior.argmax())
                final[label.name] = model.options[best]
                method[label.name] = {
                    "method": "dawid_skene",
                    "posterior": round(float(posterior[best]), 4),
                    "majority": majority,
                    "votes": dict(counts),
                    "iterations": model.iterations,
                    "prior_strength": PRIOR_STRENGTH,
                    "n": len(present),
                }
            else:
                final[label.name] = majority
                method[label.name] = {"method": "majority_vote", "votes": dict(counts), "n": len(present)}
            if present:
                fields[label.name] = counts[final[label.name]] / len(present)
    averaged = [share for name, share in fields.items() if name not in per_tag]
    agreement = round(statistics.fmean(averaged), 4) if averaged else 1.0
    return Aggregate(final, method, agreement, fields)


def _preference(counts: Counter[str], options: Sequence[str]) -> tuple[str | None, float]:
    """The preferred side and the share of votes that agree with it. A and B drawing is a tie."""
    total = sum(counts.values())
    if not total:
        return None, 0.0
    top = max(counts.values())
    leaders = [o for o in options if counts.get(o, 0) == top]
    if len(leaders) == 1:
        return leaders[0], top / total
    # A draw is a tie: nobody's preference wins; only the experts who said "tie" agree with it.
    if "tie" in options:
        return "tie", counts.get("tie", 0) / total
    return None, 0.0
