"""Runs of a rewritten prompt from the workbench's core: against the local model server, limited
per expert and hour, failures kept as data, and an answer may cite only its own task's run of the
very prompt it submits."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from nightshift.dispatch.assignments import dispatch_batch
from nightshift.generate.shared import SharedModels
from nightshift.platform.db import transaction
from nightshift.platform.errors import NotFoundError
from nightshift.platform.models import Assignment, ModelRun, utcnow
from nightshift.platform.outside import EnvSecretResolver
from nightshift.projects.registry import apply_spec
from nightshift.projects.spec import ProjectSpec
from nightshift.work import answers, model_runs
from nightshift.work.access import AnswerInvalid
from tests.conftest import with_generation
from tests.nightshift.generate.test_generate import _generate, write_jsonl
from tests.nightshift.ingest.test_ingest import good_row, ingest_file

REWRITE = "Using only the context's figures, say whether the refinancing keeps the covenant ratios."


def _rewrite_spec(project: ProjectSpec, url: str, model: str = "nightshift-sim") -> ProjectSpec:
    data = with_generation(project, url, model=model).model_dump(mode="json")
    data["project"]["generation"]["runs_per_expert_per_hour"] = 2
    data["project"]["labels"] = [
        {"name": "rating", "type": "ordinal_scale", "min": 1, "max": 7},
        {"name": "rewrite", "type": "prompt_rewrite", "min_length": 20},
    ]
    return ProjectSpec.model_validate(data)


def _task(sessions, project, server, tmp_path: Path, model: str = "nightshift-sim", spec=None) -> tuple[int, int, int]:
    """(assignment, its expert, another expert's assignment) of a fresh generated, dispatched batch."""
    with transaction(sessions) as session:
        apply_spec(session, (spec or _rewrite_spec)(project, server.url, model))
    rows = [
        good_row(f"r-{i}", prompt=f"Should Acme refinance loan number {i} this year?", context="EUR revenue 40%.")
        for i in range(4)
    ]
    batch_id, _ = ingest_file(sessions, write_jsonl(tmp_path / "items.jsonl", rows))
    _generate(sessions, batch_id)
    with transaction(sessions) as session:
        dispatch_batch(session, batch_id, utcnow())
        tasks = session.execute(
            select(Assignment.id, Assignment.expert_id).where(Assignment.status == "assigned").order_by(Assignment.id)
        ).all()
    mine = tasks[0]
    other = next(t for t in tasks if t.expert_id != mine.expert_id)
    return mine.id, mine.expert_id, other.id


MODELS = SharedModels()


def _run(sessions, expert: int, task: int, prompt: str = REWRITE, label: str = "rewrite") -> model_runs.RunView:
    with transaction(sessions) as session:
        pending = model_runs.start_run(session, expert, task, label, prompt)
    return model_runs.finish_run(sessions, EnvSecretResolver(), MODELS, pending)


def test_a_run_is_answered_kept_and_limited_per_expert_and_hour(sessions, project, model_server, tmp_path) -> None:
    task, expert, others = _task(sessions, project, model_server, tmp_path)
    first = _run(sessions, expert, task)
    assert first.status == "ok" and first.content and first.prompt == REWRITE and first.endpoint == "local"
    second = _run(sessions, expert, task, REWRITE + " Show the numbers.")
    assert second.content != first.content  # another prompt, another answer
    with pytest.raises(model_runs.RunLimited, match="at most 2 model runs an hour"):
        _run(sessions, expert, task)
    with sessions() as session:
        stored = session.scalars(select(ModelRun).order_by(ModelRun.id)).all()
        assert [(r.status, r.expert_id, r.assignment_id) for r in stored] == [("ok", expert, task)] * 2
        assert all(r.completion_tokens and r.latency_ms is not None for r in stored)
        assert [r.run_id for r in model_runs.runs_of(session, task)] == [first.run_id, second.run_id]
    with pytest.raises(model_runs.RunRefused, match="'rating' is not a prompt rewrite"):
        _run(sessions, expert, task, label="rating")
    with pytest.raises(NotFoundError):
        _run(sessions, expert, others)  # not theirs


def test_an_answer_cites_its_own_run_of_the_very_prompt(sessions, project, model_server, tmp_path) -> None:
    task, expert, _ = _task(sessions, project, model_server, tmp_path)
    with pytest.raises(model_runs.RunRefused, match="must be 20 to"):
        _run(sessions, expert, task, "too short")
    ran = _run(sessions, expert, task)
    for rewrite, why in [
        ({"prompt": REWRITE}, "run the rewritten prompt against the model before submitting it"),
        ({"prompt": REWRITE + " (edited)", "run": ran.run_id}, "the prompt changed after its run"),
        ({"prompt": REWRITE, "run": ran.run_id + 1000}, "that run is not one of this task's answered runs"),
    ]:
        with transaction(sessions) as session, pytest.raises(AnswerInvalid) as refused:
            answers.submit_answer(session, expert, task, {"rating": 4, "rewrite": rewrite})
        assert why in refused.value.errors["rewrite"]
    with transaction(sessions) as session:
        answers.submit_answer(session, expert, task, {"rating": 4, "rewrite": {"prompt": REWRITE, "run": ran.run_id}})


def test_a_model_that_fails_leaves_a_failed_run_and_no_citable_one(sessions, project, tmp_path) -> None:
    from app.model_server import ModelServerThread

    with ModelServerThread(hang_seconds=3) as server:
        task, expert, _ = _task(sessions, project, server, tmp_path)
        # The generation answered; now the endpoint breaks (its model name picks the fault).
        with transaction(sessions) as session:
            apply_spec(session, _rewrite_spec(project, server.url, model="nightshift-broken-500"))
        failed = _run(sessions, expert, task)
    assert (failed.status, failed.content, failed.error) == ("failed", None, "HTTP 500")
    with transaction(sessions) as session, pytest.raises(AnswerInvalid):
        answers.submit_answer(
            session, expert, task, {"rating": 4, "rewrite": {"prompt": REWRITE, "run": failed.run_id}}
        )


def test_a_simulated_expert_out_of_runs_passes_the_task_on(sessions, project, model_server, tmp_path) -> None:
    from nightshift.platform.models import Item
    from nightshift.simulation.simulate import OUT_OF_RUNS, simulate_work

    task, _, _ = _task(sessions, project, model_server, tmp_path)
    with transaction(sessions) as session:
        batch = session.scalar(
            select(Item.batch_id).join(Assignment, Assignment.item_id == Item.id).where(Assignment.id == task)
        )
        assert simulate_work(session, int(batch or 0), [task], run=lambda *_: None) == 0
    with sessions() as session:
        closed = session.get_one(Assignment, task)
        # Skipped with its reason, so dispatch gives the item to someone else; never left open.
        assert (closed.status, closed.status_reason) == ("skipped", OUT_OF_RUNS)


def _chat_spec(project: ProjectSpec, url: str, model: str = "nightshift-sim") -> ProjectSpec:
    data = with_generation(project, url, model=model).model_dump(mode="json")
    data["project"]["labels"] = [
        {"name": "rating", "type": "ordinal_scale", "min": 1, "max": 7},
        {"name": "talk", "type": "chat", "min_turns": 2, "max_turns": 3},
    ]
    return ProjectSpec.model_validate(data)


def _chat_task(sessions, project, server, tmp_path: Path) -> tuple[int, int]:
    task, expert, _ = _task(sessions, project, server, tmp_path, spec=_chat_spec)
    return task, expert


def test_a_chat_carries_its_conversation_to_each_next_turn_and_stops_at_its_last(
    sessions, project, model_server, tmp_path
) -> None:
    task, expert = _chat_task(sessions, project, model_server, tmp_path)
    one = _run(sessions, expert, task, "What is the main risk here?", label="talk")
    # The first message takes the prompt's place, after the item's context.
    assert [role for role, _ in model_server.app.last_messages] == ["user"]
    assert model_server.app.last_messages[0][1] == "EUR revenue 40%.\n\nWhat is the main risk here?"
    two = _run(sessions, expert, task, "Which figure supports that?", label="talk")
    assert [role for role, _ in model_server.app.last_messages] == ["user", "assistant", "user"]
    assert model_server.app.last_messages[1:] == [("assistant", one.content), ("user", "Which figure supports that?")]
    assert two.status == "ok" and two.content != one.content
    # A turn asked while the one before is still with the model would fork the conversation.
    with transaction(sessions) as session:
        model_runs.start_run(session, expert, task, "talk", "And the second risk?")
    with pytest.raises(model_runs.RunRefused, match="still answering your last message"):
        _run(sessions, expert, task, "Hello?", label="talk")
    with transaction(sessions) as session:
        turns = model_runs.conversation(session, task, "talk")
        assert [t[0] for t in turns] == [one.run_id, two.run_id]  # the unanswered turn is not part of it
        session.execute(
            ModelRun.__table__.update().where(ModelRun.status == "running").values(status="ok", content="Hedge it.")
        )
    with pytest.raises(model_runs.RunRefused, match="has had its 3 turns"):
        _run(sessions, expert, task, "One more?", label="talk")
    with pytest.raises(model_runs.RunRefused, match="a message must be 1 to 8000"):
        _run(sessions, expert, task, "x" * 8001, label="talk")


def test_a_chat_answer_rates_every_turn_in_order_and_is_stored_with_the_texts(
    sessions, project, model_server, tmp_path
) -> None:
    from nightshift.platform.models import Submission

    task, expert = _chat_task(sessions, project, model_server, tmp_path)
    one = _run(sessions, expert, task, "What is the main risk here?", label="talk")
    two = _run(sessions, expert, task, "Which figure supports that?", label="talk")

    def turn(run: int, rating: int = 4, **more: object) -> dict:
        return {"run": run, "rating": rating, **more}

    for talk, why in [
        ({"turns": [turn(one.run_id)]}, "a chat of 2 to 3 turns"),
        ({"turns": [turn(two.run_id), turn(one.run_id)]}, "rate every turn of this task's chat, in order"),
        ({"turns": [turn(one.run_id), turn(two.run_id + 99)]}, "not one of this task's chat"),
        ({"turns": [turn(one.run_id), turn(two.run_id, 9)]}, "turn 2: rate the reply from 1 to 5"),
        ({"turns": [turn(one.run_id), turn(two.run_id, marks=["typo"])]}, "turn 2: marks must be distinct error"),
        ({"turns": [turn(one.run_id), {"rating": 3}]}, "turn 2: send the message to the model first"),
    ]:
        with transaction(sessions) as session, pytest.raises(AnswerInvalid) as refused:
            answers.submit_answer(session, expert, task, {"rating": 4, "talk": talk})
        assert why in refused.value.errors["talk"], (talk, refused.value.errors)
    # What a client sends for the texts is not what is stored: the runs' texts are.
    sent = {
        "turns": [
            turn(one.run_id, 2, marks=["factual_error"], note="wrong rate", reply="forged"),
            turn(two.run_id, 5),
        ]
    }
    with transaction(sessions) as session:
        stored_id = answers.submit_answer(session, expert, task, {"rating": 4, "talk": sent})
    with sessions() as session:
        stored = session.get_one(Submission, stored_id).answer["talk"]["turns"]
    assert [(t["run"], t["message"], t["reply"], t["rating"], t["marks"], t["note"]) for t in stored] == [
        (one.run_id, "What is the main risk here?", one.content, 2, ["factual_error"], "wrong rate"),
        (two.run_id, "Which figure supports that?", two.content, 5, [], ""),
    ]


def _priced_spec(project: ProjectSpec, url: str, model: str = "nightshift-sim") -> ProjectSpec:
    data = _rewrite_spec(project, url, model).model_dump(mode="json")
    data["project"]["generation"]["endpoints"][0] |= {
        "usd_per_million_prompt_tokens": "1000",
        "usd_per_million_completion_tokens": "5000",
    }
    return ProjectSpec.model_validate(data)


def test_the_models_tokens_are_priced_into_the_batch_and_project_cost(
    sessions, project, model_server, tmp_path
) -> None:
    from decimal import Decimal

    from sqlalchemy import func

    from nightshift.payouts.costs import model_costs, project_costs
    from nightshift.platform.models import Item, ModelResponse
    from nightshift.reports.status import batch_statuses

    task, expert, _ = _task(sessions, project, model_server, tmp_path, spec=_priced_spec)
    _run(sessions, expert, task)
    with sessions() as session:
        batch, project_id = session.execute(
            select(Item.batch_id, Item.project_id)
            .join(Assignment, Assignment.item_id == Item.id)
            .where(Assignment.id == task)
        ).one()
        # The answers generated for the batch's items, and the expert's run: every token priced.
        prompt = session.scalar(select(func.sum(ModelResponse.prompt_tokens))) + session.scalar(
            select(func.sum(ModelRun.prompt_tokens))
        )
        completion = session.scalar(select(func.sum(ModelResponse.completion_tokens))) + session.scalar(
            select(func.sum(ModelRun.completion_tokens))
        )
        expected = (Decimal(prompt) * 1000 + Decimal(completion) * 5000) / 1_000_000
        assert prompt and completion and expected > Decimal("0.10")
        cost = model_costs(session, [batch])[batch]
        assert abs(cost - expected) <= Decimal("0.01")
        assert project_costs(session, [project_id])[project_id] == cost  # no expert has been paid yet
        [status] = batch_statuses(session, [batch])
        assert (status.cost_so_far_usd, status.model_cost_usd) == (str(cost), str(cost))
