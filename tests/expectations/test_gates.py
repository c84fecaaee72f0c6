from __future__ import annotations

import gc
import multiprocessing
import queue
import traceback
import weakref
from pathlib import Path

from expectations.delivery_readiness import check_delivery_readiness
from expectations.submissions import check_submissions
from nightshift.delivery.build import BuiltDelivery
from nightshift.delivery.records import RECORD_FIELDS


def _row(sid: int, **answer_overrides) -> dict:
    answer = {
        "rating": 5,
        "error_tags": ["reasoning_flaw"],
        "rationale": "The answer ignores the covenant limits stated in the context.",
        "improved_prompt": "Given the covenants in the context, recommend whether to proceed and list the "
        "numbers that drive the decision.",
    }
    answer.update(answer_overrides)
    return {
        "submission_id": sid,
        "item_id": sid,
        "expert_id": 1,
        "time_on_task_seconds": 600,
        "answer": answer,
    }


def test_the_submissions_gate_names_each_failing_submission_and_why(sample_spec) -> None:
    rushed = _row(2)
    rushed["time_on_task_seconds"] = 12
    rows = [
        _row(1),
        rushed,
        _row(3, rating=9),
        _row(4, rationale="too short"),
        _row(5, error_tags=["made_up_tag"]),
        _row(6, improved_prompt=None),
    ]
    outcome = check_submissions(rows, sample_spec.project)
    assert not outcome.success
    assert outcome.evaluated_ids == [1, 2, 3, 4, 5, 6]
    assert outcome.failures == {
        2: "time on task under 60 s",
        3: "rating outside 1..7",
        4: "rationale shorter than 40 characters",
        5: "error_tags has an unknown option",
        6: "improved_prompt missing",
    }
    # Each expectation names its own failing rows.
    failing = {e["reason"]: e["failing_ids"] for e in outcome.expectations if not e["success"]}
    assert failing == {
        "time on task under 60 s": [2],
        "too fast for the length of the item": [2],
        "rating outside 1..7": [3],
        "rationale shorter than 40 characters": [4],
        "error_tags has an unknown option": [5],
        "improved_prompt missing": [6],
    }


def test_a_free_text_that_is_not_text_fails_its_length_check(sample_spec) -> None:
    # The gate sees each text's length; a number in its place must not pass as "no text".
    outcome = check_submissions([_row(1), _row(2, rationale=12345)], sample_spec.project)
    assert outcome.failures == {2: "rationale shorter than 40 characters"}


def test_a_clean_batch_passes_the_submissions_gate(sample_spec) -> None:
    outcome = check_submissions([_row(1), _row(2, error_tags=[])], sample_spec.project)
    assert outcome.success and outcome.failures == {}


def test_the_gate_checks_rankings_rubrics_spans_and_chats_over_the_models_answers() -> None:
    from nightshift.projects.spec import ProjectBody, load_spec
    from tests.conftest import SAMPLES

    data = load_spec(SAMPLES / "compare.yaml").project.model_dump(mode="json")
    data["labels"].append({"name": "follow_up", "type": "chat", "min_turns": 2, "max_turns": 3})
    project = ProjectBody.model_validate(data)
    turn = {"run": 1, "message": "Why?", "reply": "Because.", "rating": 4, "marks": [], "note": ""}
    grade = {"reads_the_context": 4, "sound_reasoning": 3, "follows_instructions": 2, "safe": 4}
    span = {"response": "B", "start": 5, "end": 30, "type": "unsafe"}

    def row(sid: int, **changes: object) -> dict:
        answer = {
            "ranking": ["B", "A", "C"],
            "best_answer_grade": grade,
            "error_spans": [span],
            "rationale": "B keeps to the covenant figures; A and C misread them in the second step.",
            "improved_prompt": {
                "prompt": "Using only the figures in the context, decide whether the sale keeps the "
                "covenant ratios, and show the calculation.",
                "run": 1,
            },
            "follow_up": {"turns": [turn, {**turn, "run": 2}]},
            **changes,
        }
        lengths = {"A": 300, "B": 300, "C": 300}
        return {
            "submission_id": sid,
            "item_id": sid,
            "expert_id": 1,
            "time_on_task_seconds": 900,
            "answer": answer,
            "response_lengths": lengths,
        }

    rows = [
        row(1),
        row(2, ranking=["B", "B", "C"]),
        row(3, best_answer_grade={"reads_the_context": 4}),
        row(4, error_spans=[{**span, "end": 301}]),
        row(5, error_spans=[]),
        row(6, follow_up={"turns": [turn]}),
        row(7, follow_up={"turns": [turn, {**turn, "rating": 9}]}),
    ]
    outcome = check_submissions(rows, project)
    assert outcome.failures == {
        2: "ranking is not an order of A, B, C",
        3: "best_answer_grade does not score every criterion on its scale",
        4: "error_spans: a span outside its response's text",
        6: "follow_up: a chat of 2 to 3 turns, each reply rated on its scale",
        7: "follow_up: a chat of 2 to 3 turns, each reply rated on its scale",
    }


def test_each_gate_run_renders_its_data_docs_page_from_templates_compiled_once(sample_spec, tmp_path) -> None:
    from expectations.docs_views import COMPILED_TEMPLATES

    first = check_submissions([_row(1)], sample_spec.project, tmp_path)
    compiled = dict(COMPILED_TEMPLATES._compiled)
    second = check_submissions([_row(2), _row(3, rating=9)], sample_spec.project, tmp_path)
    # GX's page and index templates went through the shared cache; the second run compiled none anew.
    assert compiled and COMPILED_TEMPLATES._compiled == compiled
    for outcome in (first, second):
        assert outcome.docs_url and outcome.docs_url.startswith("file://")
        page = Path(outcome.docs_url.removeprefix("file://")).read_text()
        assert "expect_column_values_to_be_between" in page or "values must be" in page
    assert "Failed" in Path(second.docs_url.removeprefix("file://")).read_text()


def _built(item_ids: list[int], columns: set[str], missing_answers: list[int] | None = None) -> BuiltDelivery:
    """What the delivery build hands the gate: the ids written, those without an answer, the fields."""
    return BuiltDelivery(
        batch_id=1,
        client_id=1,
        version=1,
        reason="first delivery",
        staging=Path("unused"),
        final=Path("unused"),
        item_ids=item_ids,
        missing_answer_ids=missing_answers or [],
        columns=columns,
    )


def test_delivery_readiness_catches_leaked_personal_data_and_missing_items() -> None:
    fields = set(RECORD_FIELDS)
    assert check_delivery_readiness(_built([1, 2], fields), [1, 2]).success
    # A redelivery's records say what changed: still the schema.
    assert check_delivery_readiness(_built([1], fields | {"change"}), [1]).success

    leaky = check_delivery_readiness(_built([1], fields | {"expert_email"}), [1])
    assert not leaky.success
    assert "record carries fields outside the delivery schema" in leaky.failures.values()

    missing = check_delivery_readiness(_built([1], fields), [1, 2])
    assert missing.failures == {2: "item missing from the delivery"}

    stranger = check_delivery_readiness(_built([1, 7], fields), [1])
    assert stranger.failures == {7: "item is not a passed item of this batch"}

    doubled = check_delivery_readiness(_built([1, 1], fields), [1])
    assert doubled.failures.get(1) == "more than one final answer"

    unanswered = check_delivery_readiness(_built([1, 2], fields, missing_answers=[2]), [1, 2])
    assert unanswered.failures == {2: "no final answer"}


def test_the_ingest_chunk_gate_passes_good_items_and_names_bad_ones(sample_spec) -> None:
    from expectations.ingest_chunk import check_chunk
    from expectations.worker import GateWorker

    def item(language: str, prompt: str | None = "A scenario long enough to pass.") -> dict:
        fields = {"prompt": prompt, "model_answer": "An answer.", "language": language}
        return {"language": language, "fields": {k: v for k, v in fields.items() if v is not None}}

    # context and domain are optional and absent: that passes.
    assert check_chunk({"a": item("en"), "b": item("ja")}, sample_spec.project) == {}
    chunk = {"a": item("en"), "b": item("tlh"), "c": item("de", prompt="short"), "d": item("fr", prompt=None)}
    expected = {
        "b": "gate: language not allowed",
        "c": "gate: prompt missing or length out of bounds",
        "d": "gate: prompt missing or length out of bounds",
    }
    assert check_chunk(chunk, sample_spec.project) == expected
    # Ingest runs it in the gate's worker process: the same verdicts come back from there.
    worker = GateWorker()
    try:
        assert check_chunk(chunk, sample_spec.project, worker) == expected
        assert worker.pid is not None
    finally:
        worker.close()


def test_a_gate_that_cannot_run_fails_loudly_instead_of_passing() -> None:
    import great_expectations.expectations as gxe
    import pandas as pd
    import pytest

    from expectations.runner import Check, run_checks

    with pytest.raises(RuntimeError, match="could not run"):
        run_checks("broken", pd.DataFrame({"a": [1]}), [Check(gxe.ExpectColumnValuesToNotBeNull(column="b"), "x")], "a")


def test_a_gate_run_with_data_docs_leaves_its_callers_rows_to_reference_counting(sample_spec, tmp_path) -> None:
    """A review part's rows are freed when the part returns, not when the collector next walks
    them: GX keeps an exception in a reference cycle on each checkpoint run, and its traceback
    must not reach the caller's frames. Both runs: the pass/fail one and, on failure, the one
    naming the rows."""

    class Rows(list):  # a list that can be weakly referenced
        pass

    def review_part(rows_in: list[dict]) -> tuple[weakref.ref, bool]:
        rows = Rows(rows_in)
        outcome = check_submissions(rows, sample_spec.project, tmp_path / "docs")
        return weakref.ref(rows), outcome.success

    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for rows, passes in (([_row(1), _row(2)], True), ([_row(1), _row(2, rating=9)], False)):
            gone, success = review_part(rows)
            assert success is passes
            assert gone() is None, "the caller's rows outlived it in a reference cycle"
    finally:
        if was_enabled:
            gc.enable()


def _gate_in_child(spec_project, docs: Path, results) -> None:  # a forked child's body
    try:
        outcome = check_submissions([_row(1), _row(2, rating=9)], spec_project, docs)
        results.put(sorted(outcome.failures))
    except BaseException:
        results.put(traceback.format_exc())


def test_a_process_forked_after_a_gate_run_runs_gates_too(sample_spec, tmp_path) -> None:
    """Checkpoints run on a thread of their own; a forked child has none of its parent's threads,
    so it must start its own rather than queue work for a thread that is not there."""
    assert check_submissions([_row(1), _row(2)], sample_spec.project, tmp_path / "docs").success
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_gate_in_child, args=(sample_spec.project, tmp_path / "docs", results))
    child.start()
    try:
        # What the child found, not how it exits: a fork of the test process inherits its exit hooks.
        found = results.get(timeout=60)
    except queue.Empty:
        raise AssertionError("the forked child's gate run never finished") from None
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
            child.join()
    assert found == [2], found
