"""The access log: every read of an item's content (an expert's task over the API or in the
workbench, ops showing a quarantined row, a client's delivery) is a row, shown and exported for an
audit; a client's export names experts by the aliases its records use."""

from __future__ import annotations

import csv
import json

from sqlalchemy import select

from nightshift.platform.db import transaction
from nightshift.platform.models import AccessLog, Expert, Item
from nightshift.work.tasks import view_task
from tests.app.test_cli_errors import env, nightshift  # noqa: F401  (env is a fixture)
from tests.nightshift.ingest.test_ingest import good_row, ingest_file


def _log(sessions) -> list[AccessLog]:
    with sessions() as session:
        return list(session.scalars(select(AccessLog).order_by(AccessLog.id)))


def test_each_task_an_expert_opens_is_logged_and_exported(world, env, tmp_path) -> None:  # noqa: F811
    handle = world.annotators[0]
    with world.http(world.experts[handle]) as http:
        first = http.get("/api/expert/assignments/next").json()
        again = http.get(f"/api/expert/assignments/{first['assignment_id']}").json()
        # Someone else's task is a 404 and no read.
        other = world.open_tasks(world.annotators[1])[0]
        assert http.get(f"/api/expert/assignments/{other}").status_code == 404
    assert again["assignment_id"] == first["assignment_id"]
    with transaction(world.sessions) as session:
        expert = session.scalars(select(Expert).where(Expert.handle == handle)).one()
        item = session.scalars(select(Item).where(Item.external_id == first["item"]["external_id"])).one()
        view_task(session, expert.id, first["assignment_id"], via="workbench")
    log = _log(world.sessions)
    assert [(e.actor_kind, e.actor, e.action, e.via) for e in log] == [
        ("expert", str(expert.id), "annotate", "api"),
        ("expert", str(expert.id), "annotate", "api"),
        ("expert", str(expert.id), "annotate", "workbench"),
    ]
    assert {(e.item_id, e.batch_id, e.assignment_id) for e in log} == {(item.id, item.batch_id, first["assignment_id"])}

    shown = nightshift("access-log", "show", "--item", str(item.id), "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    assert [r["external_id"] for r in json.loads(shown.stdout)] == [item.external_id] * 3
    out = tmp_path / "audit.csv"
    exported = nightshift("access-log", "export", "--client", "acme", "--out", str(out), env=env)
    assert exported.stdout.strip() == f"3 entries written to {out}"
    rows = list(csv.DictReader(out.open()))
    # The expert as the client's records name them: one stable alias, not the id or the handle.
    aliases = {r["actor"] for r in rows}
    assert len(aliases) == 1 and aliases.pop().startswith("exp_") and handle not in out.read_text()
    # Another client's auditors see none of it.
    globex = nightshift("access-log", "export", "--client", "globex", "--out", str(tmp_path / "g.csv"), env=env)
    assert globex.stdout.startswith("0 entries")


def test_ops_showing_a_quarantined_row_is_logged(sessions, project, env, tmp_path) -> None:  # noqa: F811
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(good_row("bad", language="xx")) + "\n")
    ingest_file(sessions, path)
    [entry] = json.loads(nightshift("quarantine", "list", "--json", env=env).stdout)
    assert nightshift("quarantine", "show", str(entry["id"]), env=env).returncode == 0
    [logged] = _log(sessions)
    assert (logged.actor_kind, logged.action, logged.via) == ("ops", "quarantine_show", "cli")
    assert logged.detail == {"quarantined_row": entry["id"]} and logged.actor
