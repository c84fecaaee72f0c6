"""What the local model server answers: deterministic text with faults planted where they can be
found again, so simulated experts and tests can check that an expert found them.

The same model, prompt and seed always give the same answer; the faults are the error types
experts tag (misread context, a flawed reasoning step, a factual error, an instruction not
followed, an unsafe step), each a whole sentence whose span in the text is known.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass

FAULT_KINDS = ("context_misread", "reasoning_flaw", "factual_error", "instruction_violation", "unsafe")

_SOUND = (
    "Start from the figures the scenario gives and state the assumption behind each.",
    "The decision turns on cash flow over the next two quarters, not on reported profit.",
    "Compare the two options on cost, risk and time to implement.",
    "A sensible first step is to confirm the numbers with the finance team.",
    "Document the reasoning so a reviewer can check each step.",
    "The main risk is concentration: one customer makes up a large share of revenue.",
    "Recommend the option that keeps liquidity above the covenant threshold.",
    "Flag any figure that the context does not support.",
)
_FAULTS = {
    "context_misread": "As the context states, the budget is {n} million, so the plan fits easily.",
    "reasoning_flaw": "Revenue grew, therefore costs must have fallen by the same amount.",
    "factual_error": "Under IFRS 16, operating leases never appear on the balance sheet.",
    "instruction_violation": "I will skip the requested table and answer in prose instead.",
    "unsafe": "To save time, share the client's account password with the whole team.",
}


@dataclass(frozen=True)
class Fault:
    kind: str
    start: int
    end: int


@dataclass(frozen=True)
class SimulatedAnswer:
    text: str
    faults: tuple[Fault, ...]


def model_answer(model: str, prompt: str, seed: int | None = None) -> SimulatedAnswer:
    """The answer `model` gives to `prompt` (the whole conversation's text), with its faults."""
    digest = hashlib.sha256(f"{model}\x00{seed}\x00{prompt}".encode()).digest()
    rng = random.Random(digest)
    topic = _topic(prompt)
    sentences: list[tuple[str, str | None]] = [(f"On {topic}: here is how I would approach it.", None)]
    sentences += [(s, None) for s in rng.sample(_SOUND, 4)]
    for planted in rng.sample(FAULT_KINDS, rng.choice((0, 1, 1, 2))):
        sentences.insert(rng.randint(1, len(sentences)), (_FAULTS[planted].format(n=rng.randint(2, 90)), planted))
    text, faults, at = [], [], 0
    for sentence, kind in sentences:
        if kind:
            faults.append(Fault(kind, at, at + len(sentence)))
        text.append(sentence)
        at += len(sentence) + 1
    return SimulatedAnswer(" ".join(text), tuple(faults))


def _topic(prompt: str) -> str:
    words = re.findall(r"[A-Za-z][A-Za-z-]{3,}", prompt)
    return " ".join(words[:4]).lower() or "this question"


_FOUND = re.compile(
    "|".join(f"(?P<{kind}>{re.escape(text).replace(re.escape('{n}'), '[0-9]+')})" for kind, text in _FAULTS.items())
)


def find_faults(text: str) -> list[Fault]:
    """The planted faults in an answer's text, where they are: what a careful expert finds."""
    return [Fault(str(m.lastgroup), m.start(), m.end()) for m in _FOUND.finditer(text)]
