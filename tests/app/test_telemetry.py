"""How an answer was written, as the workbench and the expert API report it: a rationale pasted in
real Chromium becomes a "pasted" signal on the submission, a typed one does not; telemetry that
breaks its bounds is a 422 and nothing is stored."""

from __future__ import annotations

from sqlalchemy import select

from nightshift.platform.models import Assignment, Submission
from nightshift.work.signals import signals_of
from tests.app.browser import SCREENS, follow, sign_in

RATIONALE = "The answer misreads the covenant limits in the context, so its plan would breach them."
PROMPT = "Given the covenant limits in the context, say whether to proceed and show the numbers behind the decision."
ANSWER = {"rating": 2, "error_tags": ["context_misread"], "rationale": RATIONALE, "improved_prompt": PROMPT}


def _submission(world, task: int) -> int | None:
    with world.sessions() as session:
        return session.scalar(select(Submission.id).where(Submission.assignment_id == task))


def test_the_api_keeps_telemetry_as_a_signal_and_refuses_it_out_of_bounds(world) -> None:
    (one, first), (other, second) = ((h, world.open_tasks(h)[0]) for h in world.annotators)
    with world.http(world.experts[one]) as http:
        http.get(f"/api/expert/assignments/{first}").raise_for_status()
        bad = {"answer": ANSWER, "telemetry": {"pastes": [{"field": "rationale", "chars": "many"}]}}
        refused = http.post(f"/api/expert/assignments/{first}/submission", json=bad)
        assert refused.status_code == 422 and "telemetry" in refused.text
        assert _submission(world, first) is None
        pasted = {"pastes": [{"field": "rationale", "chars": len(RATIONALE), "at": 4.2}], "typing": []}
        http.post(
            f"/api/expert/assignments/{first}/submission", json={"answer": ANSWER, "telemetry": pasted}
        ).raise_for_status()
    with world.http(world.experts[other]) as http:
        http.get(f"/api/expert/assignments/{second}").raise_for_status()
        typed = {"pastes": [], "typing": [{"field": "rationale", "chars": len(RATIONALE), "at": 30}]}
        http.post(
            f"/api/expert/assignments/{second}/submission", json={"answer": ANSWER, "telemetry": typed}
        ).raise_for_status()
    with world.sessions() as session:
        flagged = signals_of(session, _submission(world, first) or 0)
        clean = signals_of(session, _submission(world, second) or 0)
    assert flagged["pasted"][0] == 1.0 and flagged["pasted"][1]["fields"] == ["rationale"]
    assert flagged["risk"][0] >= 0.5
    assert clean["pasted"][0] == 0.0 and clean["risk"][0] == 0.0


def test_a_rationale_pasted_in_the_browser_is_a_pasted_signal(browser, world, request) -> None:
    params = request.node.callspec.id
    handle = world.annotators[0]
    page = sign_in(browser, world.url, world.experts[handle], f"{params}-telemetry-0")
    task = world.open_tasks(handle)[0]
    page.goto(f"{world.url}/work/{task}")
    page.check("input[name=rating][value='2']")
    page.check("input[name=error_tags][value=context_misread]")
    page.fill("textarea[name=improved_prompt]", PROMPT)
    # A paste as the browser delivers it: the event with its clipboard text, then the text in the field.
    page.eval_on_selector(
        "textarea[name=rationale]",
        """(area, text) => {
            const data = new DataTransfer();
            data.setData("text/plain", text);
            area.dispatchEvent(new ClipboardEvent("paste", {clipboardData: data, bubbles: true}));
            area.value = text;
        }""",
        RATIONALE,
    )
    page.screenshot(path=SCREENS / f"{params}-telemetry-1-pasted.png", full_page=True)
    follow(page, "button[value=submit]")
    assert "Submitted" in page.inner_text("[role=status]")
    with world.sessions() as session:
        submission = session.scalar(
            select(Submission.id)
            .join(Assignment, Assignment.id == Submission.assignment_id)
            .where(Assignment.id == task)
        )
        found = signals_of(session, submission or 0)
    assert found["pasted"][0] == 1.0
    assert found["pasted"][1]["fields"] == ["rationale"] and found["pasted"][1]["pastes"] == 1
