"""`nightshift quarantine list|show|retry` through the real entry point."""

from __future__ import annotations

import json

from tests.app.test_cli_errors import env, nightshift, one_line_error  # noqa: F401  (env is a fixture)
from tests.nightshift.ingest.test_ingest import good_row, ingest_file


def test_ops_see_a_refused_row_fix_it_and_load_it(sessions, project, env, tmp_path) -> None:  # noqa: F811
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps(good_row("ok")) + "\n" + json.dumps(good_row("bad", language="xx")) + "\n")
    ingest_file(sessions, path)

    listed = nightshift("quarantine", "list", "--json", env=env)
    [entry] = json.loads(listed.stdout)
    assert entry["external_id"] == "bad" and entry["reason"].startswith("language is not one of")
    shown = nightshift("quarantine", "show", str(entry["id"]), env=env).stdout
    assert "reason: language is not one of" in shown and '"external_id":"bad"' in shown

    # As it was, it is still refused: one line, nothing loaded.
    assert one_line_error(nightshift("quarantine", "retry", str(entry["id"]), env=env)).startswith(
        "error: still refused: language is not one of"
    )
    fixed = json.dumps(good_row("bad", language="de"))
    result = nightshift("quarantine", "retry", str(entry["id"]), "--row", fixed, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"row {entry['id']} loaded as item ")
    assert json.loads(nightshift("quarantine", "list", "--json", env=env).stdout) == []
    again = nightshift("quarantine", "retry", str(entry["id"]), "--row", fixed, env=env)
    assert "was already loaded as item" in one_line_error(again)


def test_unknown_rows_are_one_line(env) -> None:  # noqa: F811
    assert one_line_error(nightshift("quarantine", "show", "999", env=env)) == "error: unknown quarantined row 999"
    assert one_line_error(nightshift("quarantine", "retry", "999", env=env)) == "error: unknown quarantined row 999"
