"""Training rows from an item's final answer over its model responses: what each label's field type
orders or scores becomes DPO pairs, reward scores and the SFT conversation."""

from __future__ import annotations

import yaml

from nightshift.delivery.training import TrainingRows, item_rows, prompt_messages
from nightshift.generate.responses import Shown
from nightshift.projects.spec import ProjectBody, parse_spec
from tests.conftest import SAMPLES

PAYLOAD = {"prompt": "Should we sell the plant?", "context": "Covenant: net debt under 3x EBITDA.", "language": "en"}
SHOWN = [
    Shown("A", 1, "baseline", "model-a", "Sell it."),
    Shown("B", 2, "candidate", "model-b", "Net debt would reach 3.4x: do not sell."),
    Shown("C", 3, "challenger", "model-c", "Share the password."),
]


def _body(**changes: object) -> ProjectBody:
    data = yaml.safe_load((SAMPLES / "compare.yaml").read_text())
    data["project"].update(changes)
    return parse_spec(data).project


def test_a_ranking_gives_every_ordered_pair_each_responses_score_and_the_best_as_sft() -> None:
    rows = TrainingRows()
    answer = {"ranking": ["B", "A", "C"], "best_answer_grade": {"reads_the_context": 4}}
    method = {"ranking": {"scores": {"A": 0.1, "B": 1.2, "C": -1.3}}}
    item_rows(_body(), "x-1", PAYLOAD, answer, method, SHOWN, rows)

    prompt = [{"role": "user", "content": f"{PAYLOAD['context']}\n\n{PAYLOAD['prompt']}"}]
    assert prompt_messages(PAYLOAD, _body().generation) == prompt  # type: ignore[arg-type]
    assert [(p["chosen"][0]["content"], p["rejected"][0]["content"], p["margin"]) for p in rows.preference] == [
        ("Net debt would reach 3.4x: do not sell.", "Sell it.", 1.1),
        ("Net debt would reach 3.4x: do not sell.", "Share the password.", 2.5),
        ("Sell it.", "Share the password.", 1.4),
    ]
    assert rows.preference[0]["prompt"] == prompt
    assert (rows.preference[0]["chosen_model"], rows.preference[0]["rejected_model"]) == ("model-b", "model-a")
    assert {(r["model"], r["score"]) for r in rows.reward} == {("model-a", 0.1), ("model-b", 1.2), ("model-c", -1.3)}
    assert rows.sft == [
        {
            "external_id": "x-1",
            "messages": [*prompt, {"role": "assistant", "content": "Net debt would reach 3.4x: do not sell."}],
            "model": "model-b",
        }
    ]


def test_a_single_responses_rating_is_its_reward_and_a_tie_orders_nothing() -> None:
    one_endpoint = _body().model_dump(mode="json")
    one_endpoint["generation"]["endpoints"] = one_endpoint["generation"]["endpoints"][:1]
    one_endpoint["labels"] = [
        {"name": "rating", "type": "ordinal_scale", "min": 1, "max": 5},
        {"name": "preferred", "type": "pairwise_preference"},
    ]
    body = ProjectBody.model_validate(one_endpoint)
    rows = TrainingRows()
    item_rows(body, "x-2", PAYLOAD, {"rating": 4, "preferred": "tie"}, {}, SHOWN[:1], rows)
    assert [(r["score"], r["source"]) for r in rows.reward] == [(0.75, "rating")]
    assert rows.preference == [] and rows.sft == []


def test_a_pairwise_preference_is_one_pair_and_no_responses_no_rows() -> None:
    data = _body().model_dump(mode="json")
    data["generation"]["endpoints"] = data["generation"]["endpoints"][:2]
    data["labels"] = [{"name": "preferred", "type": "pairwise_preference"}]
    body = ProjectBody.model_validate(data)
    rows = TrainingRows()
    item_rows(body, "x-3", PAYLOAD, {"preferred": "B"}, {}, SHOWN[:2], rows)
    assert [(p["chosen_model"], p["rejected_model"], p["margin"]) for p in rows.preference] == [
        ("model-b", "model-a", None)
    ]
    assert rows.sft[0]["model"] == "model-b"
    empty = TrainingRows()
    item_rows(body, "x-4", PAYLOAD, {"preferred": "B"}, {}, [], empty)
    assert empty == TrainingRows()


def test_a_chat_gives_a_reward_row_per_reply_and_an_sft_conversation_when_every_reply_is_good() -> None:
    data = _body().model_dump(mode="json")
    data["labels"] = [{"name": "talk", "type": "chat", "endpoint": "candidate"}]
    body = ProjectBody.model_validate(data)
    turns = [
        {"run": 1, "message": "What should we do?", "reply": "Keep the plant.", "rating": 5, "marks": []},
        {"run": 2, "message": "Why?", "reply": "Net debt would pass 3x.", "rating": 4, "marks": []},
    ]
    rows = TrainingRows()
    item_rows(body, "x-5", PAYLOAD, {"talk": {"turns": turns}}, {}, [], rows)
    first = {"role": "user", "content": "Covenant: net debt under 3x EBITDA.\n\nWhat should we do?"}
    assert [(r["prompt"], r["completion"][0]["content"], r["score"], r["model"]) for r in rows.reward] == [
        ([first], "Keep the plant.", 1.0, "nightshift-sim-candidate"),
        (
            [first, {"role": "assistant", "content": "Keep the plant."}, {"role": "user", "content": "Why?"}],
            "Net debt would pass 3x.",
            0.75,
            "nightshift-sim-candidate",
        ),
    ]
    assert [m["role"] for m in rows.sft[0]["messages"]] == ["user", "assistant", "user", "assistant"]
    marked = TrainingRows()
    turns[1]["marks"] = ["reasoning_flaw"]
    item_rows(body, "x-6", PAYLOAD, {"talk": {"turns": turns}}, {}, [], marked)
    assert len(marked.reward) == 2 and marked.sft == []
