"""One review round once the submissions gate has written its verdicts: aggregate what is complete,
judge every expert of the batch on the quality model, pause those very probably under the
project's floor and send back what their votes decided, update reliability, move the batch on.

The quality gate runs after aggregation, not before: the answers this round settled are then
evidence too (a random answerer shows in their first round, not a round later), and a pause sends
back only the work the expert's votes decided, the rest standing and paid.

A big round is reviewed part by part (review_part, by item; review.gates.review_parts), each
part's submissions read once and held only while it is gated and aggregated, then its experts are
settled once (settle_experts). The review task (tasks.review) and the benches (bench/review.py,
bench/quality.py) run this one sequence.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from nightshift.platform.db import transaction
from nightshift.platform.heap import without_collection
from nightshift.platform.models import Batch
from nightshift.projects.registry import batch_body, project_body
from nightshift.projects.spec import ProjectBody
from nightshift.review import gates
from nightshift.review.gates import AgreementGate, GateOutcome, GateTally, ItemRange, record_gate
from nightshift.review.gold import GoldScore, gold_scores, pause_and_requeue
from nightshift.review.reliability import experts_of_batch, gather_evidence, update_reliability
from nightshift.review.round_signals import record_round_signals
from nightshift.review.settle import ReviewReport, aggregate_ready_items, settle_batch

# The submissions gate: (the part's rows, project, copies=the copied texts) -> failing submissions
# (expectations.submissions).
SubmissionsGate = Callable[..., GateOutcome]
# The quality gate: (each expert's record, project) -> failing expert ids (expectations.gold).
QualityGate = Callable[[list[GoldScore], ProjectBody], GateOutcome]


@dataclass
class PartReview:
    """What one part of a round did: the gates' counts and what ops are shown, not its rows."""

    submissions: GateTally
    agreement: GateTally
    report: ReviewReport


def review_part(
    sessions: sessionmaker[Session],
    batch_id: int,
    items: ItemRange,
    copies: Mapping[int, str] | None,
    submissions_gate: SubmissionsGate,
    agreement_gate: AgreementGate,
    timings: dict[str, float] | None = None,
) -> PartReview:
    """One part of the round: its submissions read once and gated (the verdicts and signals
    written), then its complete items aggregated and their agreement gated, each step its own
    transaction (a re-run takes up what is left). copies: the whole round's copied texts when it
    is reviewed in more than one part (review.gates.round_copies). timings: where each step's
    seconds are added up, by step."""
    clock = _Clock(timings)
    with sessions() as session:
        project = batch_body(session, batch_id)
        rows = gates.submissions_to_gate(session, batch_id, items)
        gates.add_response_lengths(session, rows, project)
        gates.add_echoes(session, rows, project)
    clock.lap("read")
    # Found here, not in the gate, so the signals record the same copies the gate judged.
    copied = gates.copies_among(rows, project, copies)
    outcome = submissions_gate(rows, project, copies=copied)
    clock.lap("submissions gate")
    if outcome.evaluated_ids:
        with transaction(sessions) as session:
            record_gate(session, batch_id, outcome)
            gates.apply_submission_gate(session, outcome, rows)
            record_round_signals(session, rows, project, copied)
    clock.lap("verdicts")
    submissions = GateTally(outcome.gate)
    submissions.add(outcome)
    report = ReviewReport()
    with transaction(sessions) as session:
        aggregate_ready_items(session, batch_id, report, agreement_gate, gates.known_answers(rows), items)
    clock.lap("aggregation")
    agreement = GateTally("agreement")
    agreement.add(report.agreement)
    report.agreement = None
    return PartReview(submissions, agreement, report)


class _Clock:
    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings, self.mark = timings, time.perf_counter()

    def lap(self, step: str) -> None:
        if self.timings is not None:
            now = time.perf_counter()
            self.timings[step] = self.timings.get(step, 0.0) + now - self.mark
            self.mark = now


@without_collection
def settle_experts(
    session: Session,
    batch_id: int,
    quality_gate: QualityGate,
    actor: str,
) -> ReviewReport:
    """The round's second half, once its parts are aggregated: the quality gate over the batch's
    experts, pauses and what they send back, reliability, the batch's status. A whole-batch step:
    the collector paused, as for a part. The parts' answers are not in hand (memory holds a part
    at a time); of each answer only what a comparison needs is read (review.reliability)."""
    report = ReviewReport()
    project = project_body(session, session.get_one(Batch, batch_id).project_id)
    experts = experts_of_batch(session, batch_id)
    # One read of the evidence serves the gate and reliability.
    evidence = report.evidence = gather_evidence(session, experts)
    outcome = report.quality = quality_gate(gold_scores(session, batch_id, evidence=evidence), project)
    if outcome.evaluated_ids:
        run_id = record_gate(session, batch_id, outcome)
        failing = sorted(outcome.failures)
        reason = f"accuracy very probably under {project.gates.min_gold_accuracy:.0%} (gold and agreement)"
        report.paused_experts = len(failing)
        report.requeued_items = pause_and_requeue(session, batch_id, failing, reason, f"{actor}:{run_id}")
    # Feedback: what the gates learned about each expert steers the next dispatch.
    update_reliability(session, experts, evidence=evidence)
    report.batch_status = settle_batch(session, batch_id)
    return report
