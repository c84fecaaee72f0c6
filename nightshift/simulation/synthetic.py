"""Synthetic work items, experts and answers with a known truth: for the demo, tests and benchmarks.

The truth of an item is derived from its content hash, so the simulator never needs a hidden column
and gold answers generated here agree with what an accurate expert would say.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from nightshift.fields import field_type
from nightshift.projects.spec import Label
from nightshift.simulation.model_answers import find_faults

DOMAINS = ("finance", "law", "medicine", "software", "tax", "insurance", "logistics", "energy")
LANGUAGES = ("en", "de", "fr", "es", "ja")
TIMEZONES = (
    "America/Los_Angeles",
    "America/New_York",
    "America/Sao_Paulo",
    "Europe/London",
    "Europe/Berlin",
    "Africa/Lagos",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
)
SCENARIOS = (
    "A mid-sized manufacturer is weighing a sale-and-leaseback of its main plant to fund an acquisition.",
    "A retail bank must decide whether to hedge its fixed-rate mortgage book against rising rates.",
    "A SaaS company's CFO asks how a switch to usage-based pricing changes revenue recognition.",
    "A family office reviews concentration risk after a single stock grew to 40% of the portfolio.",
    "A logistics firm compares leasing and buying 200 electric vans under two tax regimes.",
    "An insurer re-prices a commercial property line after two years of flood losses.",
)
FILLER = (
    "The board wants a recommendation with the main risks, the numbers that drive the decision, "
    "and what would have to be true for the opposite choice to be better. "
)


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


def generate_items(n: int, seed: int = 7, text_bytes: int = 600, prefix: str = "item") -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    for i in range(n):
        scenario = rng.choice(SCENARIOS)
        body = (FILLER * (1 + text_bytes // len(FILLER)))[: max(0, text_bytes - len(scenario))]
        yield {
            "external_id": f"{prefix}-{seed}-{i:07d}",
            "prompt": f"{scenario} {body}".strip(),
            "model_answer": f"Recommendation {i}: proceed, provided the cost of capital stays below "
            f"{rng.randint(4, 12)}% and covenants allow it.",
            "context": f"Case {i}; figures in USD millions; fiscal year {rng.randint(2019, 2026)}.",
            "language": rng.choice(LANGUAGES),
            "domain": "finance",
        }


def generate_experts(n: int, seed: int = 11, prefix: str = "expert") -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    for i in range(n):
        tier = "adjudicator" if i % 10 == 0 else "reviewer" if i % 4 == 0 else "annotator"
        others = rng.sample(DOMAINS[1:], k=rng.randint(0, 2))
        skills = ["finance", *others] if i % 8 != 7 else others or ["law"]
        languages = sorted({"en", *rng.sample(LANGUAGES, k=rng.randint(1, 3))})
        yield {
            "handle": f"{prefix}-{i:05d}",
            "name": f"Expert {i}",
            "email": f"{prefix}{i}@experts.example",
            "timezone": rng.choice(TIMEZONES),
            "work_start_hour": rng.choice((18, 19, 20, 21, 22)),
            "work_hours": rng.choice((2, 3, 4)),
            "hourly_rate": f"{rng.randint(100, 250)}.00",
            "tier": tier,
            "capacity": rng.choice((20, 30, 40)),
            "skills": skills,
            "languages": languages,
        }


def true_answer(
    content_hash: str, labels: Sequence[Label], responses: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The answer a perfect expert gives for this item. responses: the item's model answers by
    label (A, B, …); where a field's truth follows from their planted faults, it does."""
    rng = random.Random(_seed("truth", content_hash))
    faults = {r: [(f.kind, f.start, f.end) for f in find_faults(text)] for r, text in (responses or {}).items()}
    answer: dict[str, Any] = {}
    for label in labels:
        kind = field_type(label)
        drawn = kind.true_value(label, rng)
        known = kind.true_value_from_faults(label, faults, drawn) if faults else None
        answer[label.name] = drawn if known is None else known
    return answer


def expert_profile(handle: str) -> tuple[float, float]:
    """(accuracy, speed) of a simulated expert: most are careful, about one in six is careless."""
    rng = random.Random(_seed("profile", handle))
    if rng.random() < 0.16:
        return rng.uniform(0.3, 0.5), rng.uniform(2.5, 4.0)
    return rng.uniform(0.82, 0.97), rng.uniform(0.8, 1.3)


def simulated_answer(
    content_hash: str,
    handle: str,
    labels: Sequence[Label],
    expected_minutes: float,
    responses: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], int]:
    """What this expert answers for this item (with its model answers by label, if any), and how
    many seconds it took them."""
    accuracy, speed = expert_profile(handle)
    rng = random.Random(_seed("answer", content_hash, handle))
    truth = true_answer(content_hash, labels, responses)
    careless = accuracy < 0.6
    answer: dict[str, Any] = {}
    for label in labels:
        correct = rng.random() < accuracy
        answer[label.name] = field_type(label).simulated_value(label, rng, truth[label.name], correct)
    seconds = int(expected_minutes * 60 / speed * rng.uniform(0.7, 1.3))
    if careless and rng.random() < 0.5:
        seconds = rng.randint(5, 50)  # rushed: the submissions gate's time-on-task check catches it
    return answer, max(1, seconds)
