"""An expert's words that repeat the item's input or a model's answer with trivial edits are
rejected by the submissions gate; a real rewrite, a short text and another field are not."""

from __future__ import annotations

from sqlalchemy import select, update

from expectations.submissions import check_submissions
from nightshift.platform.db import transaction
from nightshift.platform.models import Assignment, Batch, Item, Submission
from nightshift.projects.registry import project_spec
from nightshift.projects.spec import load_spec
from nightshift.review import gates
from nightshift.review.echoes import echo_checked, echoed_texts
from tests.conftest import SAMPLES
from tests.flows.test_review_flow import _answer_open_work
from tests.nightshift.ingest.test_ingest import ingest_file

PROMPT = (
    "A mid-sized manufacturer is weighing a sale-and-leaseback of its main plant to fund an acquisition. "
    "The board wants a recommendation with the main risks and the numbers that drive the decision."
)
SPEC = load_spec(SAMPLES / "spec.yaml").project


def _row(submission_id: int, **answer: object) -> dict:
    return {"submission_id": submission_id, "item_id": 1, "expert_id": submission_id, "answer": answer}


def test_a_trivially_edited_prompt_is_flagged_and_a_real_rewrite_is_not() -> None:
    shown = {1: [("prompt", PROMPT), ("model_answer", "Sell the plant: the cash is cheaper than a loan.")]}
    rows = [
        # The prompt with its case, punctuation and one word changed.
        _row(
            1,
            improved_prompt="a mid sized manufacturer is weighing a sale and leaseback of its MAIN plant to "
            "fund an acquisition!! the board wants a recommendation with the key risks and the numbers "
            "that drive the decision",
        ),
        # The prompt's scenario kept, the ask rewritten and made specific: an expert's work.
        _row(
            2,
            improved_prompt="You advise the board of a mid-sized manufacturer. Compare a sale-and-leaseback "
            "of its main plant with a term loan to fund an acquisition: give the after-tax cost of each, "
            "the covenant and lease risks, and the break-even rent at which the loan wins.",
        ),
        # Short texts are never judged (a one-line note may well quote the item).
        _row(3, rationale="Sell the plant: the cash is cheaper."),
        # A rationale that is the model's own answer, repeated.
        _row(4, rationale="Sell the plant - the cash is cheaper than a loan!"),
    ]
    flagged = echoed_texts(rows, shown, SPEC)
    assert flagged == {
        1: "improved_prompt repeats the item's prompt",
        4: "rationale repeats the item's model_answer",
    }
    # 1 turns the check off.
    off = SPEC.model_copy(update={"gates": SPEC.gates.model_copy(update={"max_echo_similarity": 1.0})})
    assert not echo_checked(off)


def test_the_submissions_gate_rejects_an_echoed_prompt_and_accepts_the_rest(sessions, project) -> None:
    batch_id, _ = ingest_file(sessions, SAMPLES / "items.jsonl")
    _answer_open_work(sessions, batch_id, lambda expert, item, gold: gold["rating"] if gold else 5)
    with transaction(sessions) as session:
        submission_id, item_id = session.execute(
            select(Submission.id, Assignment.item_id)
            .join(Assignment, Assignment.id == Submission.assignment_id)
            .where(Assignment.role == "annotate")
            .order_by(Submission.id)
            .limit(1)
        ).one()
        prompt = session.scalar(select(Item.payload["prompt"].as_string()).where(Item.id == item_id))
        answer = dict(session.get_one(Submission, submission_id).answer)
        answer["improved_prompt"] = f"Please answer: {prompt}"
        session.execute(update(Submission).where(Submission.id == submission_id).values(answer=answer))
    with sessions() as session:
        spec = project_spec(session, session.get_one(Batch, batch_id).project_id).project
        rows = gates.submissions_to_gate(session, batch_id)
        gates.add_echoes(session, rows, spec)
    outcome = check_submissions(rows, spec)
    assert outcome.failures == {
        submission_id: "own words that repeat the item's input or a model's answer with trivial edits"
    }
    assert len(outcome.evaluated_ids) == len(rows) > 1
