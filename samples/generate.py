"""Writes the bundled sample data (deterministic): `uv run python samples/generate.py`."""

from __future__ import annotations

import json
from pathlib import Path

from nightshift.ingest.rows import content_hash
from nightshift.projects.spec import load_spec
from nightshift.simulation.synthetic import generate_experts, generate_items, true_answer

HERE = Path(__file__).parent
FIELDS = ("prompt", "model_answer", "context", "language", "domain")


def main() -> None:
    project = load_spec(HERE / "spec.yaml").project
    with (HERE / "items.jsonl").open("w") as out:
        for n, item in enumerate(generate_items(240, seed=2026, prefix="acme")):
            if n % 20 == 0:  # one in twenty is a gold item with its known answer
                item["gold_answer"] = true_answer(content_hash({k: item[k] for k in FIELDS}), project.labels)
            out.write(json.dumps(item) + "\n")
    with (HERE / "experts.jsonl").open("w") as out:
        for expert in generate_experts(60, seed=11):
            out.write(json.dumps(expert) + "\n")


if __name__ == "__main__":
    main()
