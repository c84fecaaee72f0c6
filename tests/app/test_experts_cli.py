"""`nightshift experts import|set-status|show` through the real entry point."""

from __future__ import annotations

import json

import pytest

from tests.app.test_cli_errors import env, nightshift, one_line_error  # noqa: F401  (env is a fixture)
from tests.conftest import SAMPLES


def test_ops_pause_an_expert_and_see_the_history_and_reliability(sessions, env) -> None:  # noqa: F811
    nightshift("project", "apply", str(SAMPLES / "spec.yaml"), env=env)
    imported = nightshift("experts", "import", str(SAMPLES / "experts.jsonl"), env=env)
    assert imported.returncode == 0, imported.stderr
    handle = json.loads((SAMPLES / "experts.jsonl").read_text().splitlines()[0])["handle"]
    assert nightshift("experts", "set-status", handle, "paused", env=env).stdout.strip() == f"{handle}: paused"

    profile = json.loads(nightshift("experts", "show", handle, "--json", env=env).stdout)
    assert profile["status"] == "paused"
    assert profile["reliability"] == profile["reliability_prior"] == 0.8  # new: the prior, not 0 or 1
    # The quality model's view: the prior's mean, wide, on no evidence.
    assert profile["quality"]["estimate"] == 0.8 and profile["quality"]["evidence"] == 0
    low, high = profile["quality"]["interval_90"]
    assert low < 0.5 and high > 0.95
    assert [(h["from"], h["to"], h["by"]) for h in profile["status_history"]] == [("active", "paused", "cli")]
    assert "email" not in profile and "name" not in profile
    text = nightshift("experts", "show", handle, env=env).stdout
    assert "reliability 0.800 (prior 0.8): gold 0/0, agreement 0/0, 0 missed deadlines" in text
    assert "quality 0.800, 90% between" in text and "on 0 judged answers" in text
    assert one_line_error(nightshift("experts", "show", "nobody", env=env)) == "error: unknown expert 'nobody'"


@pytest.mark.slow(30)
def test_an_expert_file_bigger_than_a_statement_can_bind_imports_whole(sessions, env, tmp_path) -> None:  # noqa: F811
    from sqlalchemy import func, select

    from nightshift.platform.models import Expert, ExpertLanguage
    from nightshift.simulation.synthetic import generate_experts

    # More handles than one PostgreSQL statement may bind (65,535); this SQLite binds far more.
    if sessions.kw["bind"].dialect.name != "postgresql":
        pytest.skip("the limit is PostgreSQL's")
    count = 66_000
    path = tmp_path / "experts.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in generate_experts(count, seed=3)))
    imported = nightshift("experts", "import", str(path), env=env)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == f"{count} experts imported ({count} new)"
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Expert)) == count
        assert session.scalar(select(func.count(func.distinct(ExpertLanguage.expert_id)))) == count
