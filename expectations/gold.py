"""Gate: each expert is very probably at or above the project's accuracy floor.

The measure is the Beta posterior of the expert's accuracy (review.quality) from gold answers with
partial credit and agreement with final answers: the probability that the accuracy is under
min_gold_accuracy must stay at or under PAUSE_CONFIDENCE. Few answers leave the posterior wide, so
one miss is never a verdict. Failing rows are expert ids; the review flow pauses them and sends
back the work their votes decided.
"""

from __future__ import annotations

from pathlib import Path

from expectations.runner import Check, run_checks
from nightshift.projects.spec import ProjectBody
from nightshift.review.gates import GateOutcome
from nightshift.review.gold import GoldScore
from nightshift.review.quality import PAUSE_CONFIDENCE

GATE = "gold"


def check_gold(scores: list[GoldScore], project: ProjectBody, docs_dir: Path | None = None) -> GateOutcome:
    import great_expectations.expectations as gxe
    import pandas as pd

    gates = project.gates
    thresholds = {
        "min_gold_accuracy": gates.min_gold_accuracy,
        "min_gold_answers": gates.min_gold_answers,
        "pause_confidence": PAUSE_CONFIDENCE,
    }
    judged = [s for s in scores if s.judged >= gates.min_gold_answers]
    if not judged:
        return GateOutcome(GATE, [], {}, thresholds, [])
    frame = pd.DataFrame(
        {
            "expert_id": [s.expert_id for s in judged],
            "gold_seen": [s.seen for s in judged],
            "quality": [round(s.quality.mean, 4) for s in judged],
            "p_under_floor": [s.quality.p_below(gates.min_gold_accuracy) for s in judged],
        }
    )
    checks = [
        Check(
            gxe.ExpectColumnValuesToBeBetween(column="p_under_floor", max_value=PAUSE_CONFIDENCE),
            f"accuracy very probably under {gates.min_gold_accuracy:.0%}",
        )
    ]
    checked = run_checks(GATE, frame, checks, "expert_id", docs_dir)
    ids = [s.expert_id for s in judged]
    return GateOutcome(GATE, ids, checked.failures, thresholds, checked.summaries, checked.docs_url)
