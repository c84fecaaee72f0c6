"""Qualification in a real browser (Debian's Chromium, driven by Playwright): a new expert trains
and sees each right answer and why; one expert passes the finance exam and gets the work of a
project that asks for finance at level 1, another fails, must wait to retake, and gets none."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from sqlalchemy import select

from nightshift.dispatch.assignments import dispatch_batch
from nightshift.platform.db import transaction
from nightshift.platform.models import Assignment, Expert, Item, utcnow
from nightshift.projects.registry import apply_spec
from nightshift.projects.spec import parse_spec
from nightshift.work import exams
from tests.app.browser import SCREENS, follow, sign_in
from tests.conftest import SAMPLES
from tests.nightshift.ingest.test_ingest import good_row, ingest_file

EXAM = SAMPLES / "exams" / "finance-level-1.yaml"
TRAINING = SAMPLES / "exams" / "onboarding.yaml"


def _answer_all(page, verdicts: list[str], shot: str) -> None:
    for n, verdict in enumerate(verdicts):
        page.check(f"input[name=verdict][value={verdict}]")
        if n == 0:
            page.screenshot(path=SCREENS / f"{shot}-item.png", full_page=True)
        follow(page, "button[type=submit]")


def test_train_pass_the_exam_get_the_work_and_fail_it_get_none(browser, world, project, tmp_path: Path, request):
    params = request.node.callspec.id
    with transaction(world.sessions) as session:
        exams.add_exam(session, exams.load_exam(EXAM))
        exams.add_exam(session, exams.load_exam(TRAINING))
    passer, failer = world.annotators
    right = [item["answer"]["verdict"] for item in yaml.safe_load(EXAM.read_text())["items"]]

    page = sign_in(browser, world.url, world.experts[passer], f"{params}-exam-0-passer")
    # A new expert is pointed to training first; each answer is followed by the right one and why.
    assert "Start with training" in page.inner_text("main")
    page.goto(f"{world.url}/exams")
    follow(page, "tr[data-slug=onboarding] button")
    page.check("input[name=verdict][value=sound]")
    follow(page, "button[type=submit]")
    feedback = page.inner_text(".feedback")
    assert "Not quite" in feedback and "context_misread" in feedback and "45 days" in feedback
    page.screenshot(path=SCREENS / f"{params}-exam-1-training-feedback.png", full_page=True)

    page.goto(f"{world.url}/exams")
    follow(page, "tr[data-slug=finance-level-1] button")
    _answer_all(page, right, f"{params}-exam-2")
    assert "Passed with 100%" in page.inner_text(".result")
    page.screenshot(path=SCREENS / f"{params}-exam-3-passed.png", full_page=True)
    page.goto(f"{world.url}/exams")
    assert page.inner_text("tr[data-slug=finance-level-1] .status").startswith("Passed")

    other = sign_in(browser, world.url, world.experts[failer], f"{params}-exam-4-failer")
    other.goto(f"{world.url}/exams")
    follow(other, "tr[data-slug=finance-level-1] button")
    _answer_all(other, ["sound"] * len(right), f"{params}-exam-5")
    assert "Not passed: 40%" in other.inner_text(".result")
    other.goto(f"{world.url}/exams")
    assert "Retake later until" in other.inner_text("tr[data-slug=finance-level-1] .status")
    assert other.locator("tr[data-slug=finance-level-1] button").count() == 0
    other.screenshot(path=SCREENS / f"{params}-exam-6-cooling-down.png", full_page=True)

    data = project.model_dump(mode="json")
    data["project"].update(slug="acme-level-1", name="Finance at level 1", skill_level=1)
    with transaction(world.sessions) as session:
        apply_spec(session, parse_spec(data))
    path = tmp_path / "level.jsonl"
    path.write_text("".join(json.dumps(good_row(f"lvl-{i}")) + "\n" for i in range(3)))
    batch, _ = ingest_file(world.sessions, path, project="acme-level-1")
    with transaction(world.sessions) as session:
        dispatch_batch(session, batch, utcnow())
        holders = set(
            session.scalars(
                select(Expert.handle)
                .join(Assignment, Assignment.expert_id == Expert.id)
                .join(Item, Item.id == Assignment.item_id)
                .where(Item.batch_id == batch)
            )
        )
    assert holders == {passer}
    page.goto(f"{world.url}/work")
    assert "acme-level-1" in page.inner_text("main")
    other.goto(f"{world.url}/work")
    assert "acme-level-1" not in other.inner_text("main")
