"""Experts test live models, end to end: ingest → generate (the local model server) → dispatch →
ranking, rubric, spans, a prompt rewrite and a chat in the workbench (real Chromium) → review →
aggregate → deliver, and the client's training files read by Hugging Face `datasets`."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import orjson
import pytest
import yaml
from sqlalchemy import func, select
from typer.testing import CliRunner

from app.cli import app
from app.web import ServiceThread, create_app
from nightshift.experts.registry import import_experts, parse_experts
from nightshift.platform.db import make_engine, make_sessionmaker, transaction
from nightshift.platform.keys import issue_key
from nightshift.platform.models import Assignment, Batch, Item, ItemResult, ModelResponse, ModelRun, Submission
from nightshift.projects.registry import apply_spec
from nightshift.projects.spec import parse_spec
from nightshift.simulation.model_answers import Fault, find_faults
from tests.app.browser import SCREENS, follow, sign_in
from tests.conftest import SAMPLES

RATIONALE = "B reads the covenant limits from the context; A and C ignore them and reach the wrong plan."
PROMPT = (
    "Using only the figures in the context, decide whether the sale-and-leaseback keeps the covenant "
    "ratios, and show the calculation behind the decision."
)


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.slow(100)
def test_experts_rank_and_grade_live_answers_and_the_client_gets_training_files(
    browser, app_env, prefect_api, model_server, receiver, monkeypatch, tmp_path: Path, request
) -> None:
    data = yaml.safe_load((SAMPLES / "compare.yaml").read_text())
    data["client"]["webhook_url"] = receiver.url
    for endpoint in data["project"]["generation"]["endpoints"]:
        endpoint["base_url"] = model_server.url
    # Simulated experts work faster than real ones; the time gate scales with them, reading is off.
    data["project"]["gates"].update(min_time_on_task_seconds=1, reading_chars_per_second=None)
    # And a chat with the candidate model: two turns at least, each reply rated.
    data["project"]["labels"].append({"name": "follow_up", "type": "chat", "endpoint": "candidate", "min_turns": 2})
    # And a graded preference between the first two answers.
    data["project"]["labels"].append({"name": "a_vs_b", "type": "graded_preference", "strength": 3})
    spec = parse_spec(data)
    sessions = make_sessionmaker(make_engine(app_env))
    experts, _ = parse_experts(SAMPLES / "experts.jsonl")
    with transaction(sessions) as session:
        apply_spec(session, spec)
        import_experts(session, experts)
    small = tmp_path / "small.jsonl"
    small.write_text("".join((SAMPLES / "items.jsonl").read_text().splitlines(keepends=True)[:12]))

    # Ingest hands the new batch to generation: every item gets each endpoint's answer.
    [ingested] = json.loads(_cli("ingest", str(small), "-p", spec.project.slug, "--json"))["files"]
    batch = ingested["batch_id"]
    with sessions() as session:
        answered = session.scalar(select(func.count()).where(ModelResponse.status == "ok"))
    assert answered == 3 * ingested["accepted"]
    _cli("dispatch", "--batch", str(batch))

    with sessions() as session:
        task_id, expert_id = session.execute(
            select(Assignment.id, Assignment.expert_id)
            .where(Assignment.role == "annotate", Assignment.status == "assigned")
            .order_by(Assignment.id)
            .limit(1)
        ).one()
        item_id = session.scalar(select(Assignment.item_id).where(Assignment.id == task_id))
        original_prompt = session.get_one(Item, item_id).payload["prompt"]
        texts = dict(
            session.execute(
                select(ModelResponse.endpoint, ModelResponse.content).where(ModelResponse.item_id == item_id)
            ).all()
        )
    # Responses are lettered by endpoint name: baseline A, candidate B, challenger C.
    by_label = {"A": texts["baseline"], "B": texts["candidate"], "C": texts["challenger"]}
    fault_label, fault = next(
        ((label, found[0]) for label, text in by_label.items() if (found := find_faults(text))),
        ("A", Fault("context_misread", 0, 20)),
    )
    with transaction(sessions) as session:
        token = issue_key(session, "expert", expert_id).key
    from tasks.runtime import resources

    shot = f"{request.node.callspec.id}-compare"
    with ServiceThread(create_app(resources())) as web:
        # Through the API, a span past the end of its response is refused, and the task stays open.
        with httpx.Client(base_url=web.url, headers={"Authorization": f"Bearer {token}"}) as api:
            past = {"response": "A", "start": 0, "end": len(by_label["A"]) + 1, "type": "unsafe"}
            refused = api.post(
                f"/api/expert/assignments/{task_id}/submission", json={"answer": {"error_spans": [past]}}
            )
        assert refused.status_code == 422
        assert "a span runs past the end of response A" in refused.text
        page = sign_in(browser, web.url, token, shot)
        page.goto(f"{web.url}/work/{task_id}")
        assert len(page.locator("pre.model-response").all()) == 3
        assert "nightshift-sim" not in page.inner_text("main")  # which model answered stays hidden
        # Two responses on one place: refused with the reason, the other fields kept.
        page.select_option("select[aria-label='place of A']", "A=1")
        page.select_option("select[aria-label='place of B']", "B=1")
        page.select_option("select[aria-label='place of C']", "C=3")
        for criterion, score in (("reads_the_context", "4"), ("sound_reasoning", "3")):
            page.select_option(f"select[aria-label='{criterion}']", f"{criterion}={score}")
        # A span: the expert selects a planted fault in a response and tags it.
        page.evaluate(
            """([label, start, end]) => {
                const text = document.querySelector(`pre.model-response[data-label="${label}"]`).firstChild;
                const range = document.createRange();
                range.setStart(text, start);
                range.setEnd(text, end);
                window.getSelection().removeAllRanges();
                window.getSelection().addRange(range);
            }""",
            [fault_label, fault.start, fault.end],
        )
        page.select_option("select[aria-label='error_spans type']", fault.kind)
        page.fill("input[aria-label='error_spans note']", "Not what the context says.")
        page.click("div.spans button.mark")
        assert fault.kind in page.inner_text("ol.marked")
        page.fill("textarea[name=rationale]", RATIONALE)
        # The rewrite starts from the item's prompt; edited but not yet run, it cannot be submitted.
        assert page.input_value("textarea[name=improved_prompt]") == original_prompt
        page.fill("textarea[name=improved_prompt]", PROMPT)
        follow(page, "button[value=submit]")
        text = page.inner_text("main")
        assert "must order A, B, C, each once, best first" in text
        assert "criterion follows_instructions is not scored" in text
        assert "run the rewritten prompt against the model before submitting it" in text
        assert page.input_value("textarea[name=rationale]") == RATIONALE
        assert page.input_value("select[aria-label='place of C']") == "C=3"
        assert page.input_value("select[aria-label='sound_reasoning']") == "sound_reasoning=3"
        page.screenshot(path=SCREENS / f"{shot}-invalid.png", full_page=True)

        # Run the rewrite: the candidate model's new answer appears beside its first one, and the
        # form (kept as a draft) cites the run.
        follow(page, "button[value='run:improved_prompt']")
        assert "The model answered your rewrite" in page.inner_text("[role=status]")
        before, after = page.inner_text("pre.before-answer"), page.inner_text("pre.rewrite-answer")
        assert before == by_label["B"] and after and after != before
        assert page.input_value("textarea[name=improved_prompt]") == PROMPT
        assert page.input_value("textarea[name=rationale]") == RATIONALE
        page.screenshot(path=SCREENS / f"{shot}-rewrite-run.png", full_page=True)

        # The chat: its first message starts as the item's prompt; each reply appears as it comes,
        # and the conversation so far goes with the next message.
        assert page.input_value("textarea[aria-label='follow_up message']") == original_prompt
        follow(page, "button[value='run:follow_up']")
        assert len(page.locator("li.chat-turn").all()) == 1
        page.fill("textarea[aria-label='follow_up message']", "Which figure in the context decides it?")
        follow(page, "button[value='run:follow_up']")
        replies = [r.inner_text() for r in page.locator("pre.chat-reply").all()]
        assert len(replies) == 2 and all(replies) and replies[0] != replies[1]
        assert page.input_value("textarea[name=improved_prompt]") == PROMPT  # the rest of the form kept
        page.check("input[aria-label='a_vs_b 2']")  # B better than A
        page.select_option("select[aria-label='follow_up turn 1 rating']", "rating:2")
        page.check("input[aria-label='follow_up turn 1 reasoning_flaw']")
        page.fill("input[aria-label='follow_up turn 1 note']", "Skips the leverage step.")
        page.screenshot(path=SCREENS / f"{shot}-chat.png", full_page=True)

        page.select_option("select[aria-label='place of A']", "A=2")
        page.select_option("select[aria-label='place of B']", "B=1")
        page.select_option("select[aria-label='place of C']", "C=3")
        for criterion, score in (("follows_instructions", "2"), ("safe", "4")):
            page.select_option(f"select[aria-label='{criterion}']", f"{criterion}={score}")
        follow(page, "button[value=submit]")
        # A reply left unrated is refused with its reason, the rest of the form kept.
        assert "turn 2: rate the reply from 1 to 5" in page.inner_text("main")
        assert page.input_value("select[aria-label='follow_up turn 1 rating']") == "rating:2"
        page.select_option("select[aria-label='follow_up turn 2 rating']", "rating:5")
        follow(page, "button[value=submit]")
        assert "Submitted" in page.inner_text("[role=status]")
        page.screenshot(path=SCREENS / f"{shot}-submitted.png", full_page=True)
    with sessions() as session:
        answer = session.scalar(select(Submission.answer).where(Submission.assignment_id == task_id))
    assert answer["ranking"] == ["B", "A", "C"] and answer["a_vs_b"] == 2
    with sessions() as session:
        [run] = session.scalars(
            select(ModelRun).where(ModelRun.assignment_id == task_id, ModelRun.label == "improved_prompt")
        ).all()
        turns = session.scalars(
            select(ModelRun)
            .where(ModelRun.assignment_id == task_id, ModelRun.label == "follow_up")
            .order_by(ModelRun.id)
        ).all()
    # Kept with the run's answer, and the chat with its texts: the record is the conversation.
    assert answer["improved_prompt"] == {"prompt": PROMPT, "run": run.id, "answer": run.content}
    assert answer["follow_up"] == {
        "turns": [
            {
                "run": turns[0].id,
                "message": original_prompt,
                "reply": replies[0],
                "rating": 2,
                "marks": ["reasoning_flaw"],
                "note": "Skips the leverage step.",
            },
            {
                "run": turns[1].id,
                "message": "Which figure in the context decides it?",
                "reply": replies[1],
                "rating": 5,
                "marks": [],
                "note": "",
            },
        ]
    }
    assert all(t.endpoint == "candidate" and t.status == "ok" for t in turns)
    assert (run.endpoint, run.status, run.prompt) == ("candidate", "ok", PROMPT) and run.completion_tokens
    assert answer["error_spans"] == [
        {
            "response": fault_label,
            "start": fault.start,
            "end": fault.end,
            "type": fault.kind,
            "note": "Not what the context says.",
        }
    ]
    assert answer["best_answer_grade"] == {
        "reads_the_context": 4,
        "sound_reasoning": 3,
        "follows_instructions": 2,
        "safe": 4,
    }

    # The rest of the batch: simulated experts, the review and gates, then delivery.
    _cli("simulate", "--batch", str(batch), "--until-done")
    delivered = json.loads(_cli("deliver", "--batch", str(batch), "--json"))
    assert delivered["settled"][0]["status"] == "delivered"
    with sessions() as session:
        assert session.get_one(Batch, batch).status == "delivered"
        methods = session.scalars(select(ItemResult.method)).all()
        delivered_items = session.scalar(select(func.count()).where(Item.batch_id == batch, Item.status == "delivered"))
    assert all(m["ranking"]["method"] == "bradley_terry" for m in methods)
    assert all(m["best_answer_grade"]["method"] == "median_per_criterion" for m in methods)
    assert all(m["error_spans"]["method"] == "overlap_match" for m in methods)
    assert all(m["a_vs_b"]["method"] == "median_with_bradley_terry" and m["a_vs_b"]["ci95"] for m in methods)

    folder = next((tmp_path / "deliveries").glob(f"acme/{spec.project.slug}/batch-{batch}/v1"))
    manifest_files = {f["name"] for f in orjson.loads((folder / "manifest.json").read_bytes())["files"]}
    assert {"training/sft.parquet", "training/preference.parquet", "training/reward.parquet", "README.md"} <= (
        manifest_files
    )
    # What a client's training code does: load each config of the delivery's dataset card.
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = str(tmp_path / "hf-cache")
    records = datasets.load_dataset(str(folder), "records", split="train", cache_dir=cache)
    sft = datasets.load_dataset(str(folder), "sft", split="train", cache_dir=cache)
    preference = datasets.load_dataset(str(folder), "preference", split="train", cache_dir=cache)
    reward = datasets.load_dataset(str(folder), "reward", split="train", cache_dir=cache)
    items = len(records)
    assert items == delivered_items
    # Each record names the model answers its experts judged: every endpoint's, by response id.
    lineage = orjson.loads(records[0]["lineage"])
    assert [r["endpoint"] for r in lineage["responses"]] == sorted(
        e["name"] for e in data["project"]["generation"]["endpoints"]
    )
    assert all(isinstance(r["response"], int) for r in lineage["responses"])
    # The best response per item, and each chat whose every reply is unmarked and rated high.
    assert items <= len(sft) <= 2 * items
    # Each full ranking of three orders three pairs; a graded preference one, unless a tie.
    assert preference["source"].count("ranking") == 3 * items
    assert 0 < preference["source"].count("a_vs_b") <= items
    # Each ranked response's score, and each chat reply's rating (two turns an item).
    assert reward["source"].count("ranking") == 3 * items and reward["source"].count("follow_up") == 2 * items
    first = sft[0]["messages"]
    assert [m["role"] for m in first] == ["user", "assistant"]
    assert {"prompt", "chosen", "rejected", "margin"} <= set(preference.column_names)
    assert preference[0]["chosen"][0]["role"] == "assistant" and preference[0]["margin"] >= 0
    assert preference[0]["prompt"] == sft[0]["messages"][:1]
    assert {"nightshift-sim-baseline", "nightshift-sim-candidate", "nightshift-sim-challenger"} == set(reward["model"])
    card = (folder / "README.md").read_text()
    assert "Krippendorff's alpha" in card and "| ranking | ranking |" in card
    assert "nightshift-sim-candidate" in card
    # The models against each other over the batch, strongest first, each with its interval.
    standings = card.split("## Models by `ranking`", 1)[1].split("## Lineage", 1)[0]
    rows = [line.split(" | ") for line in standings.splitlines() if line.startswith("| ") and "---" not in line][1:]
    models = ["nightshift-sim-baseline", "nightshift-sim-candidate", "nightshift-sim-challenger"]
    assert sorted(row[2] for row in rows) == models
    scores = [float(row[3]) for row in rows]
    assert scores == sorted(scores, reverse=True)
