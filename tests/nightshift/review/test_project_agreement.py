"""Agreement across a project: alpha per field for each finished batch and pooled over them, and
the project-agreement gate against gates.min_project_alpha."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from expectations.project_agreement import check_project_agreement
from nightshift.platform.models import Batch, Item
from nightshift.projects.registry import project_body
from nightshift.review.agreement import field_alphas
from nightshift.review.project_agreement import project_agreement
from nightshift.review.settle import accepted_votes
from tests.app.test_cli_errors import env, nightshift  # noqa: F401  (env is a fixture)
from tests.conftest import SAMPLES
from tests.nightshift.delivery.test_delivery import run_to_passed


def _second_file(tmp_path: Path) -> Path:
    """The sample items under other ids: a second batch of the same project."""
    path = tmp_path / "again.jsonl"
    rows = [json.loads(line) for line in (SAMPLES / "items.jsonl").read_text().splitlines()]
    path.write_text("".join(json.dumps(r | {"external_id": "again-" + r["external_id"]}) + "\n" for r in rows))
    return path


def test_each_batch_has_its_alpha_and_the_project_its_pooled_one_and_its_gate(sessions, project, env, tmp_path):  # noqa: F811
    first = run_to_passed(sessions)
    second = run_to_passed(sessions, _second_file(tmp_path))
    with sessions() as session:
        project_id = session.get_one(Batch, first).project_id
        found = project_agreement(session, project_id)
        body = project_body(session, project_id)
        item_ids: dict[int, list[int]] = {first: [], second: []}
        for item_id, batch_id in session.execute(
            select(Item.id, Item.batch_id).where(Item.status == "passed", Item.is_gold.is_(False))
        ):
            item_ids[batch_id].append(item_id)
        answers = {
            b: {i: [v.answer for v in vs] for i, vs in accepted_votes(session, ids).items()}
            for b, ids in item_ids.items()
        }
    assert [b.batch_id for b in found.batches] == [first, second], "oldest first"
    assert found.items == sum(len(ids) for ids in item_ids.values())
    for batch in found.batches:
        assert batch.alphas == field_alphas(answers[batch.batch_id], body)
    assert found.pooled == field_alphas(answers[first] | answers[second], body)
    assert any(a is not None for a in found.pooled.values())
    # A window of one batch is that batch's own alpha.
    with sessions() as session:
        assert project_agreement(session, project_id, max_batches=1).pooled == found.batches[-1].alphas

    lowest = found.lowest()
    assert lowest is not None
    name, alpha = lowest
    strict = body.model_copy(update={"gates": body.gates.model_copy(update={"min_project_alpha": alpha + 0.01})})
    failed = check_project_agreement(second, found, strict)
    assert failed.evaluated_ids == [second] and name in failed.failures[second]
    assert "over its last 2 batches" in failed.failures[second]
    loose = body.model_copy(update={"gates": body.gates.model_copy(update={"min_project_alpha": alpha - 0.01})})
    assert check_project_agreement(second, found, loose).success
    assert check_project_agreement(second, found, body).evaluated_ids == [], "no floor: reported only"

    shown = nightshift("agreement", "--project", "acme-scenarios", env=env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("project acme-scenarios, 2 batches") and f"batch {first} (" in shown.stdout
