"""Appeals in a real browser (Debian's Chromium, driven by Playwright): an expert sees a reviewer's
rejection with its comment on their quality page and appeals it; an adjudicator upholds it; the
expert's quality estimate and pay go back up, and the earnings page says why."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from sqlalchemy import select

from nightshift.payouts.ledger import pay_period
from nightshift.payouts.periods import Period
from nightshift.platform.db import transaction
from nightshift.platform.keys import issue_key
from nightshift.platform.models import Assignment, Expert, ItemResult, Submission, utcnow
from nightshift.review.decisions import claim_review, decide_review
from nightshift.review.reliability import update_reliability
from nightshift.work.submissions import NewSubmission, record_submissions, start_assignments
from tests.app.browser import SCREENS, follow, sign_in
from tests.nightshift.review.test_appeals import adjudicators

COMMENT = "The rating ignores that the plan breaches the covenant limits."


def _answer(rating: int) -> dict:
    return {"rating": rating, "error_tags": [], "rationale": "r" * 50, "improved_prompt": "p" * 90}


def _percent(text: str) -> int:
    found = re.search(r"(\d+)%", text)
    assert found, text
    return int(found.group(1))


def _money(text: str) -> Decimal:
    found = re.search(r"\$(-?[\d.]+)", text)
    assert found, text
    return Decimal(found.group(1))


def test_see_a_correction_appeal_it_and_the_upheld_decision_restores_score_and_pay(browser, world, request):
    params = request.node.callspec.id
    author = world.annotators[0]
    now = utcnow()
    period = Period.week_of(now)
    with transaction(world.sessions) as session:
        author_id = session.scalar(select(Expert.id).where(Expert.handle == author))
        task = world.open_tasks(author)[0]
        start_assignments(session, {task: now - dt.timedelta(minutes=30)})
        record_submissions(session, [NewSubmission(task, _answer(2))], now)
        item = session.get_one(Assignment, task).item_id
        submission = session.scalar(select(Submission.id).where(Submission.assignment_id == task))
        on_item = list(session.scalars(select(Assignment.expert_id).where(Assignment.item_id == item)))
        reviewer, judge = adjudicators(session, on_item, 2)
        # Reviews go oldest first: the author's is the only submitted annotation.
        review = claim_review(session, reviewer, now)
        assert session.get_one(Assignment, review).subject_submission_id == submission
        decide_review(session, reviewer, review, "reject", COMMENT, now=now)
        # The item settled on another answer (the others'): the author's disagrees with it.
        session.add(ItemResult(item_id=item, answer=_answer(6), method={}, agreement=1.0, submission_ids=[]))
        # The stored estimate counts that disagreement, as the review flow would have it.
        update_reliability(session, [author_id])
        pay_period(session, period, now)
        judge_token = issue_key(session, "expert", judge).key

    page = sign_in(browser, world.url, world.experts[author], f"{params}-appeal-0-author")
    page.goto(f"{world.url}/earnings")
    total_before = _money(page.inner_text("tr:has-text('Total')"))
    page.goto(f"{world.url}/quality")
    correction = page.locator(f"article.correction[data-submission='{submission}']")
    assert COMMENT in correction.inner_text()
    score_before = _percent(page.inner_text(".reliability"))
    page.screenshot(path=SCREENS / f"{params}-appeal-1-quality.png", full_page=True)
    correction.locator("button").click()
    page.wait_for_load_state()
    assert "required" in page.inner_text("main")  # an appeal needs its reason
    page.fill(f"article.correction[data-submission='{submission}'] textarea", "The context allows 3.5x: no breach.")
    follow(page, f"article.correction[data-submission='{submission}'] button")
    assert "Appeal filed" in page.inner_text("[role=status]")
    assert "Appeal open" in page.inner_text(f"article.correction[data-submission='{submission}']")

    judge_page = sign_in(browser, world.url, judge_token, f"{params}-appeal-2-judge")
    judge_page.goto(f"{world.url}/appeals")
    card = judge_page.locator("form.appeal").first
    text = card.inner_text()
    assert COMMENT in text and "3.5x" in text and author not in text
    judge_page.screenshot(path=SCREENS / f"{params}-appeal-3-queue.png", full_page=True)
    card.locator("input[value=uphold]").check()
    card.locator("textarea[name=note]").fill("The context does allow 3.5x; the rating stands.")
    follow(judge_page, "form.appeal button")
    assert "Appeal upheld" in judge_page.inner_text("[role=status]")
    assert "No appeal waits" in judge_page.inner_text("main")

    with transaction(world.sessions) as session:
        assert pay_period(session, period, now).refunds == 1
    page.goto(f"{world.url}/quality")
    assert _percent(page.inner_text(".reliability")) > score_before
    assert "Appeal upheld: The context does allow 3.5x" in page.inner_text("main")
    page.goto(f"{world.url}/earnings")
    assert _money(page.inner_text("tr:has-text('Total')")) > total_before
    assert "upheld, deduction returned" in page.inner_text("table.adjustments")
    page.screenshot(path=SCREENS / f"{params}-appeal-4-earnings.png", full_page=True)
