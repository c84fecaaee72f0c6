"""Aggregation over arrays (a field type's aggregate_column) gives what item by item gives: the
same values, methods (keys in the same order), shares and settled checks, on drawn batches."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nightshift.fields import field_type
from nightshift.projects.spec import ProjectBody
from nightshift.review.aggregate import Vote, _rank, column_of, field_results
from nightshift.review.quality import candidate_posterior

OPTIONS = ["approve", "revise", "reject", "escalate", "unclear"]
TAGS = ["context_misread", "reasoning_flaw", "factual_error", "unsafe"]


def _project(sample_spec: Any, aggregation: str, low: int, high: int, confidence: float) -> ProjectBody:
    body = sample_spec.project.model_dump()
    body["labels"] = [
        {"name": "verdict", "type": "single_choice", "options": OPTIONS, "aggregation": aggregation},
        {"name": "rating", "type": "ordinal_scale", "min": low, "max": high},
        {"name": "tags", "type": "multi_choice", "options": TAGS},
        {"name": "notes", "type": "free_text"},
    ]
    body["gates"] = body["gates"] | {"min_confidence": confidence}
    return ProjectBody.model_validate(body)


# Reliabilities from a few values make ties (in rank, in weight) common.
reliabilities = st.one_of(st.sampled_from([0.3, 0.5, 0.7, 0.7, 0.9]), st.floats(0.0, 1.0))
answers = st.fixed_dictionaries(
    {
        "verdict": st.one_of(st.none(), st.sampled_from(OPTIONS)),
        "rating": st.one_of(st.none(), st.integers(-2, 7)),
        "tags": st.one_of(st.none(), st.lists(st.sampled_from(TAGS), unique=True)),
        "notes": st.one_of(st.none(), st.sampled_from(["a", "b", "c"])),
    }
)
# One odd answer (an unknown option, a number off the scale or not a number, a tag twice) sends
# its whole field item by item.
ODD = {"verdict": "maybe", "rating": True, "tags": ["unsafe", "unsafe"]}
votes = st.lists(st.tuples(st.integers(1, 6), reliabilities, answers, st.booleans()), max_size=7)
batches = st.lists(votes, min_size=1, max_size=8)


# sample_spec is only read.
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batch=batches,
    aggregation=st.sampled_from(["dawid_skene", "majority_vote"]),
    confidence=st.sampled_from([0.0, 0.5, 0.8]),
    scale=st.sampled_from([(-2, 7), (-2, 7), (0, 10), (1, 7)]),
    odd=st.sampled_from([None, None, None, "verdict", "rating", "tags"]),
)
def test_aggregation_over_arrays_equals_item_by_item(sample_spec, batch, aggregation, confidence, scale, odd) -> None:
    project = _project(sample_spec, aggregation, *scale, confidence)
    if odd and batch[0]:
        expert, reliability, answer, approved = batch[0][0]
        batch[0][0] = (expert, reliability, answer | {odd: ODD[odd]}, approved)
    by_item = {
        item_id: [
            Vote(item_id * 10 + n, expert, reliability, answer, approved)
            for n, (expert, reliability, answer, approved) in enumerate(drawn)
        ]
        for item_id, drawn in enumerate(batch, start=1)
    }
    reliability = {v.expert_id: v.reliability for vs in by_item.values() for v in vs}
    item_ids = list(by_item)
    ranked = [sorted(vs, key=_rank) for vs in by_item.values()]
    for label in project.labels:
        kind = field_type(label)
        fitted = kind.fit(label, by_item, reliability)
        column = column_of(label.name, item_ids, ranked)
        fast = field_results(label, kind, column, fitted, confidence)
        slow = field_results(label, kind, column, fitted, confidence, by_column=False)
        assert fast[0] == slow[0], label.name
        assert [json.dumps(m) for m in fast[1]] == [json.dumps(m) for m in slow[1]], label.name
        assert fast[2] == slow[2], label.name
        for n, (quick, reference) in enumerate(zip(fast[3], slow[3], strict=True)):
            if bool(quick) != bool(reference):
                # Only the confidence's sums run in another order: a disagreement must sit on the floor.
                present = column.present(n)
                weights = column.weights[column.starts[n] : column.starts[n + 1]].tolist()
                _, _, shares = candidate_posterior(list(zip(present, weights, strict=True)), len(OPTIONS))
                assert abs(shares.get(slow[0][n], 0.0) - confidence) < 1e-9, (label.name, n)


def test_the_column_path_is_taken_for_valid_answers(sample_spec) -> None:
    """Without this, the test above could pass with every field aggregated item by item."""
    project = _project(sample_spec, "dawid_skene", 1, 7, 0.8)
    ranked = [[Vote(1, 1, 0.9, {"verdict": "approve", "rating": 3, "tags": ["unsafe"], "notes": "x"})]]
    for label in project.labels:
        batch = field_type(label).aggregate_column(label, column_of(label.name, [1], ranked), None)
        assert batch is not None, label.name
