"""The workbench in a real browser (Debian's Chromium, driven by Playwright): sign in, answer, review, rework.

A screenshot of every page is kept in tests/artifacts/screens/ as the test's artifact.
"""

from __future__ import annotations

from sqlalchemy import select

from nightshift.dispatch.assignments import dispatch_batch
from nightshift.platform.db import transaction
from nightshift.platform.keys import issue_key
from nightshift.platform.models import Assignment, Expert, Submission, utcnow
from tests.app.browser import SCREENS, follow, sign_in

RATIONALE = "The answer misreads the covenant limits in the context, so its plan would breach them."
PROMPT = "Given the covenant limits in the context, say whether to proceed and show the numbers behind the decision."


def test_sign_in_answer_review_reject_and_rework_for_another_expert(browser, world, request) -> None:
    params = request.node.callspec.id
    annotator = world.annotators[0]

    wrong = sign_in(browser, world.url, "nse_wrong", f"{params}-0-wrong")
    assert "not valid" in wrong.inner_text("[role=alert]")

    page = sign_in(browser, world.url, world.experts[annotator], f"{params}-1-annotator")
    assert page.url.endswith("/work")
    page.screenshot(path=SCREENS / f"{params}-2-tasks.png", full_page=True)
    follow(page, "table a >> nth=0")
    task_id = int(page.url.rsplit("/", 1)[1])
    assert "Rate the answer" in page.inner_text("main")

    # A too-short rationale: the form comes back with the reason, the other values kept.
    page.check("input[name=rating][value='2']")
    page.check("input[name=error_tags][value=context_misread]")
    page.fill("textarea[name=rationale]", "too short")
    page.fill("textarea[name=improved_prompt]", PROMPT)
    follow(page, "button[value=submit]")
    assert "must be 40 to 20000 characters" in page.inner_text("main")
    assert page.is_checked("input[name=rating][value='2']")
    page.screenshot(path=SCREENS / f"{params}-3-task-invalid.png", full_page=True)

    page.fill("textarea[name=rationale]", RATIONALE)
    follow(page, "button[value=draft]")
    assert "Draft saved" in page.inner_text("[role=status]")
    follow(page, "button[value=submit]")
    assert "Submitted" in page.inner_text("[role=status]")
    page.screenshot(path=SCREENS / f"{params}-4-submitted.png", full_page=True)
    with world.sessions() as session:
        answer = session.scalars(select(Submission.answer)).one()
    assert answer == {"rating": 2, "error_tags": ["context_misread"], "rationale": RATIONALE, "improved_prompt": PROMPT}

    reviewer = sign_in(browser, world.url, world.experts[world.reviewer], f"{params}-5-reviewer")
    reviewer.goto(f"{world.url}/review")
    text = reviewer.inner_text("main")
    assert RATIONALE in text and annotator not in text
    assert reviewer.inner_text(".annotator").startswith("ann_")
    reviewer.screenshot(path=SCREENS / f"{params}-6-review.png", full_page=True)
    reviewer.check("input[name=decision][value=reject]")
    follow(reviewer, "button[type=submit]")
    assert "required" in reviewer.inner_text("main")  # a rejection needs its reason
    reviewer.check("input[name=decision][value=reject]")
    reviewer.fill("textarea[name=reason]", "misses that the covenants forbid the sale")
    follow(reviewer, "button[type=submit]")
    assert "Decision recorded" in reviewer.inner_text("main")
    reviewer.screenshot(path=SCREENS / f"{params}-7-review-done.png", full_page=True)

    with transaction(world.sessions) as session:
        item_id = session.get_one(Assignment, task_id).item_id
        dispatch_batch(session, world.batches["acme"], utcnow())
        rework = session.execute(
            select(Assignment.id.label("task"), Expert.handle, Expert.id.label("expert"))
            .join(Expert, Expert.id == Assignment.expert_id)
            .where(Assignment.item_id == item_id, Assignment.status == "assigned", Assignment.role == "annotate")
            .order_by(Assignment.id.desc())
            .limit(1)
        ).one()
        token = issue_key(session, "expert", rework.expert).key
    assert rework.handle != annotator
    other = sign_in(browser, world.url, token, f"{params}-8-other-expert")
    assert other.locator(f"a[href='/work/{rework.task}']").count() == 1
    other.goto(f"{world.url}/work/{rework.task}")
    other.screenshot(path=SCREENS / f"{params}-9-rework.png", full_page=True)
    assert other.locator("textarea[name=rationale]").input_value() == ""  # blind: nothing of the first answer
    # The first annotator cannot open the other expert's task.
    page.goto(f"{world.url}/work/{rework.task}")
    assert "no such task" in page.inner_text("main")

    page.goto(f"{world.url}/earnings")
    assert "Hourly rate" in page.inner_text("main")
    page.screenshot(path=SCREENS / f"{params}-10-earnings.png", full_page=True)


def test_an_expert_sees_the_models_answers_beside_the_item_never_which_model(
    browser, world, project, model_server, request
) -> None:
    from nightshift.generate import chunks
    from nightshift.platform.models import ModelResponse
    from nightshift.platform.outside import EnvSecretResolver
    from nightshift.projects.registry import apply_spec
    from tests.conftest import with_generation

    spec = with_generation(project, model_server.url).model_dump(mode="json")
    spec["project"]["generation"]["endpoints"].append(
        {"name": "challenger", "base_url": model_server.url, "model": "other-sim-model"}
    )
    with transaction(world.sessions) as session:
        apply_spec(session, type(project).model_validate(spec))
        plan = chunks.plan(session, world.batches["acme"], 100)
    for endpoint in plan.endpoints:
        for lo, hi in plan.ranges:
            chunks.generate_chunk(world.sessions, EnvSecretResolver(), world.batches["acme"], endpoint.name, lo, hi)
    annotator = world.annotators[0]
    task_id = world.open_tasks(annotator)[0]
    with world.http(world.experts[annotator]) as http:
        task = http.get(f"/api/expert/assignments/{task_id}").json()
    with world.sessions() as session:
        item_id = session.scalar(select(Assignment.item_id).where(Assignment.id == task_id))
        stored = dict(
            session.execute(
                select(ModelResponse.endpoint, ModelResponse.content).where(ModelResponse.item_id == item_id)
            ).all()
        )
    # Endpoints in name order: challenger is A, local is B, for every expert.
    assert [(r["label"], r["content"]) for r in task["responses"]] == [
        ("A", stored["challenger"]),
        ("B", stored["local"]),
    ]
    assert "other-sim-model" not in str(task) and "challenger" not in str(task)

    page = sign_in(browser, world.url, world.experts[annotator], f"{request.node.callspec.id}-responses")
    page.goto(f"{world.url}/work/{task_id}")
    shown = page.locator("pre.model-response").all_inner_texts()
    assert shown == [stored["challenger"], stored["local"]]
    assert "Model response A" in page.inner_text("main") and "challenger" not in page.inner_text("main")
    page.screenshot(path=SCREENS / f"{request.node.callspec.id}-responses.png", full_page=True)


def test_a_review_page_shows_the_annotators_chat_and_no_model_buttons() -> None:
    from types import SimpleNamespace

    from app.pages import templates

    macros = templates.env.from_string(
        '{% import "field_controls.html" as c with context %}'
        '{{ c.chat(chat, "talk", value) }}{{ c.prompt_rewrite(rewrite, "rw", none) }}'
    )
    chat = {
        "name": "talk",
        "max_message_length": 100,
        "max_turns": 3,
        "min_turns": 1,
        "rating_min": 1,
        "rating_max": 5,
        "error_types": ["unsafe"],
        "max_note_chars": 50,
    }
    value = {"turns": [{"run": 3, "message": "Why?", "reply": "Because the covenant says so.", "rating": 4}]}
    for role, buttons in (("review", False), ("annotate", True)):
        task = SimpleNamespace(role=role, runs={}, rewrite_from="The prompt")
        page = macros.render(task=task, chat=chat, rewrite={"name": "rw", "max_length": 200}, value=value)
        assert "Because the covenant says so." in page
        # On a review page a model button would submit the review's form: it is not there.
        assert ("Send to the model" in page, "Run against the model" in page) == (buttons, buttons)
