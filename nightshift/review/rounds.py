"""One review round once the submissions gate has written its verdicts: aggregate what is complete,
judge every expert of the batch on the quality model, pause those very probably under the
project's floor and send back what their votes decided, update reliability, move the batch on.

The quality gate runs after aggregation, not before: the answers this round settled are then
evidence too (a random answerer shows in their first round, not a round later), and a pause sends
back only the work the expert's votes decided, the rest standing and paid. The review task
(tasks.review) and the quality bench (bench/quality.py) run this one sequence.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from nightshift.platform.models import Batch
from nightshift.projects.registry import project_body
from nightshift.projects.spec import ProjectBody
from nightshift.review.gates import AgreementGate, GateOutcome, record_gate
from nightshift.review.gold import GoldScore, gold_scores, pause_and_requeue
from nightshift.review.reliability import experts_of_batch, gather_evidence, update_reliability
from nightshift.review.settle import ReviewReport, aggregate_ready_items, settle_batch
from nightshift.work.submissions import KnownAnswers

# The quality gate: (each expert's record, project) -> failing expert ids (expectations.gold).
QualityGate = Callable[[list[GoldScore], ProjectBody], GateOutcome]


def settle_round(
    session: Session,
    batch_id: int,
    agreement_gate: AgreementGate,
    quality_gate: QualityGate,
    actor: str,
    known: KnownAnswers | None = None,
) -> ReviewReport:
    """known: answers the review already read (its one read); only the others are read here."""
    report = ReviewReport()
    aggregate_ready_items(session, batch_id, report, agreement_gate, known)
    return settle_experts(session, batch_id, quality_gate, actor, known, report)


def settle_experts(
    session: Session,
    batch_id: int,
    quality_gate: QualityGate,
    actor: str,
    known: KnownAnswers | None = None,
    report: ReviewReport | None = None,
) -> ReviewReport:
    """The round's second half, once its items are aggregated (all at once, or part by part as
    the review task does for a big round): the quality gate over the batch's experts, pauses and
    what they send back, reliability, the batch's status. report: the first half's, completed here."""
    report = report or ReviewReport()
    project = project_body(session, session.get_one(Batch, batch_id).project_id)
    experts = experts_of_batch(session, batch_id)
    # One read of the evidence serves the gate and reliability.
    evidence = report.evidence = gather_evidence(session, experts, known)
    outcome = report.quality = quality_gate(gold_scores(session, batch_id, evidence=evidence), project)
    if outcome.evaluated_ids:
        run_id = record_gate(session, batch_id, outcome)
        failing = sorted(outcome.failures)
        reason = f"accuracy very probably under {project.gates.min_gold_accuracy:.0%} (gold and agreement)"
        report.paused_experts = len(failing)
        report.requeued_items = pause_and_requeue(session, batch_id, failing, reason, f"{actor}:{run_id}", known)
    # Feedback: what the gates learned about each expert steers the next dispatch.
    update_reliability(session, experts, evidence=evidence)
    report.batch_status = settle_batch(session, batch_id)
    return report
