"""Gate: each expert's gold accuracy in the project at or above the spec's threshold.

Only experts with enough gold answers are judged (the spec's min_gold_answers): one miss is not a
verdict. Failing rows are expert ids; the review flow pauses them and re-queues their work.
"""

from __future__ import annotations

from pathlib import Path

from expectations.runner import Check, run_checks
from nightshift.projects.spec import ProjectBody
from nightshift.review.gates import GateOutcome
from nightshift.review.gold import GoldScore

GATE = "gold"


def check_gold(scores: list[GoldScore], project: ProjectBody, docs_dir: Path | None = None) -> GateOutcome:
    import great_expectations.expectations as gxe
    import pandas as pd

    gates = project.gates
    thresholds = {"min_gold_accuracy": gates.min_gold_accuracy, "min_gold_answers": gates.min_gold_answers}
    judged = [s for s in scores if s.seen >= gates.min_gold_answers]
    if not judged:
        return GateOutcome(GATE, [], {}, thresholds, [])
    frame = pd.DataFrame(
        {
            "expert_id": [s.expert_id for s in judged],
            "gold_seen": [s.seen for s in judged],
            "gold_accuracy": [s.accuracy for s in judged],
        }
    )
    checks = [
        Check(
            gxe.ExpectColumnValuesToBeBetween(column="gold_accuracy", min_value=gates.min_gold_accuracy),
            f"gold accuracy under {gates.min_gold_accuracy:.0%}",
        )
    ]
    checked = run_checks(GATE, frame, checks, "expert_id", docs_dir)
    ids = [s.expert_id for s in judged]
    return GateOutcome(GATE, ids, checked.failures, thresholds, checked.summaries, checked.docs_url)
