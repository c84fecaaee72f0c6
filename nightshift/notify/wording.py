"""What the flows tell ops, worded here: each function picks the facts and the words of one event,
so the flows only say when (the message shapes themselves are in nightshift.notify.messages)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nightshift.notify import messages
from nightshift.notify.messages import Message

if TYPE_CHECKING:
    from nightshift.payouts.budgets import Standing
    from nightshift.review.gates import GateOutcome, GateTally

# What failing each review gate leads to, as ops read it.
REVIEW_CONSEQUENCES = {
    "submissions": "failing annotations rejected; their items go back to dispatch for another expert",
    "gold": "those experts are paused and their work in this batch re-queued for others",
    "agreement": "items get one more expert, or an adjudicator at the maximum overlap",
}


def flow_run_url(prefect_ui_url: str, flow_run_id: object) -> str:
    """The run's page in the Prefect UI."""
    return f"{prefect_ui_url.rstrip('/')}/runs/flow-run/{flow_run_id}"


def run_failed(flow: str, run_name: str, error: str, prefect_ui_url: str, flow_run_id: object) -> Message:
    """A flow run failed or crashed: its name, what may be said of the error, a link to the run."""
    return messages.flow_failed(flow, run_name, error, flow_run_url(prefect_ui_url, flow_run_id))


def review_gate_failed(outcome: GateTally, batch_id: int) -> Message:
    """A review gate (submissions, gold, agreement) failed: how much, against what, and what follows."""
    thresholds = ", ".join(f"{k} {v}" for k, v in outcome.thresholds.items() if k != "alpha")
    return messages.gate_failed(
        outcome.gate,
        batch_id,
        outcome.failed,
        outcome.evaluated,
        thresholds,
        REVIEW_CONSEQUENCES[outcome.gate],
    )


def _outcome_failed(outcome: GateOutcome, batch_id: int, threshold: str, next_step: str) -> Message:
    return messages.gate_failed(
        outcome.gate, batch_id, len(outcome.failures), len(outcome.evaluated_ids), threshold, next_step
    )


def project_agreement_low(outcome: GateOutcome, batch_id: int) -> Message:
    """The project's pooled alpha fell under its floor as this batch passed: nothing is held."""
    return _outcome_failed(
        outcome,
        batch_id,
        f"min_project_alpha {outcome.thresholds.get('min_project_alpha')}",
        "nothing held; ops to look at the project's experts and instructions (nightshift agreement)",
    )


def delivery_gate_failed(outcome: GateOutcome, batch_id: int) -> Message:
    """The delivery readiness gate failed: the delivery is held."""
    return _outcome_failed(
        outcome, batch_id, "one final answer per passed item, delivery schema only", "delivery held; ops to inspect"
    )


def delivery_settled(done: dict[str, Any]) -> tuple[Message, str | None]:
    """A settled delivery (as tasks.deliver.settle_deliveries reports it): the message, and the
    channel it goes to (the client's for a delivery, None for the ops channel)."""
    if done["status"] == "delivered":
        message = messages.batch_delivered(
            done["client"], done["project"], done["batch_id"], done["records"], done["file"]
        )
        return message, done["channel"]
    return messages.delivery_dead(done["client"], done["batch_id"], "webhook attempts exhausted"), None


def dispatch_unassignable(batch_id: int, unassignable: dict[int, str]) -> Message:
    """Items of a batch nobody can take: how many, and the first one's reason."""
    first = next(iter(unassignable.values()))
    return messages.unassignable(batch_id, len(unassignable), first)


def budget_alerts(standings: list[Standing], held: int, stopped_by: str | None) -> list[Message]:
    """A message for each threshold a budget has reached (the outbox says each once per limit);
    the budget that stopped dispatch counts as used up."""
    return [
        messages.budget_reached(
            s.scope,
            s.key,
            pct,
            s.describe(),
            f"{s.usd_limit}/{s.hours_limit}",
            held if pct >= 100 and s.key == stopped_by else 0,
        )
        for s in standings
        for pct in s.crossed(stopped=s.key == stopped_by)
    ]
