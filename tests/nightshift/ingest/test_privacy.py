"""Personal data at ingest: found by Presidio's recognizers, redacted, quarantined or allowed as the
project's policy says, and recorded as kinds and counts, never as values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from nightshift.ingest.privacy import scan
from nightshift.platform.db import transaction
from nightshift.platform.models import Item, QuarantinedRow
from nightshift.projects.registry import apply_spec
from nightshift.projects.spec import PERSONAL_DATA_KINDS, ProjectSpec, SpecError, parse_spec
from tests.nightshift.ingest.test_ingest import good_row, ingest_file

EMAIL = "jane.doe@acme-corp.com"
PHONE = "+1 415-555-0132"
CARD = "4111 1111 1111 1111"
VALUES = (EMAIL, PHONE, CARD, "jane.doe", "555-0132", "4111")


def with_privacy(spec: ProjectSpec, **policy: object) -> ProjectSpec:
    data = spec.model_dump(mode="json")
    data["project"]["privacy"] = policy
    return ProjectSpec.model_validate(data)


def _ingest(sessions, spec: ProjectSpec, tmp_path: Path, prefix: str = "", **policy: object):
    with transaction(sessions) as session:
        apply_spec(session, with_privacy(spec, **policy))
    rows = [
        good_row("clean-1", prompt="Should Acme refinance loan 42 in 2027 at 4.5 percent?"),
        good_row("mail-1", prompt=f"Acme's treasurer ({EMAIL}) asks whether to refinance."),
        good_row(
            "many-1", prompt=f"Call {PHONE} and charge card {CARD} for the fee.", model_answer=f"Write to {EMAIL}."
        ),
        good_row("clean-2", prompt="Version 2.3.1 shipped on 2026-11-30 to 1,200 stores."),
    ]
    for row in rows:
        row["external_id"] = prefix + row["external_id"]
    path = tmp_path / f"{prefix}items.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    batch_id, counts = ingest_file(sessions, path)
    with sessions() as session:
        items = {
            i.external_id.removeprefix(prefix): i
            for i in session.scalars(select(Item).where(Item.batch_id == batch_id))
        }
        quarantined = list(session.scalars(select(QuarantinedRow).where(QuarantinedRow.batch_id == batch_id)))
    return counts, items, quarantined


def _no_values_in(*texts: str) -> None:
    for text in texts:
        for value in VALUES:
            assert value not in text, (value, text)


def test_redact_replaces_each_finding_by_its_kind_and_records_kinds_and_counts(sessions, project, tmp_path) -> None:
    counts, items, quarantined = _ingest(sessions, project, tmp_path, action="redact")
    assert sorted(items) == ["clean-1", "clean-2", "mail-1", "many-1"] and not quarantined
    assert items["mail-1"].payload["prompt"] == "Acme's treasurer (<EMAIL_ADDRESS>) asks whether to refinance."
    assert items["many-1"].payload["prompt"] == "Call <PHONE_NUMBER> and charge card <CREDIT_CARD> for the fee."
    assert items["many-1"].payload["model_answer"] == "Write to <EMAIL_ADDRESS>."
    assert items["many-1"].personal_data == {
        "action": "redact",
        "kinds": {"EMAIL_ADDRESS": 1, "PHONE_NUMBER": 1, "CREDIT_CARD": 1},
    }
    # Numbers that are not personal data stay as they were.
    assert items["clean-2"].payload["prompt"] == "Version 2.3.1 shipped on 2026-11-30 to 1,200 stores."
    assert items["clean-1"].personal_data is None and items["clean-2"].personal_data is None
    assert counts.personal_data == {"EMAIL_ADDRESS": 2, "PHONE_NUMBER": 1, "CREDIT_CARD": 1}
    _no_values_in(*(json.dumps(i.payload) for i in items.values()), json.dumps(counts.as_dict()))


def test_quarantine_holds_the_row_out_masked_with_the_kinds_as_its_reason(sessions, project, tmp_path) -> None:
    counts, items, quarantined = _ingest(sessions, project, tmp_path, action="quarantine")
    assert sorted(items) == ["clean-1", "clean-2"]
    reasons = {q.external_id: q.reason for q in quarantined}
    assert reasons == {
        "mail-1": "personal data: EMAIL_ADDRESS 1",
        "many-1": "personal data: CREDIT_CARD 1, EMAIL_ADDRESS 1, PHONE_NUMBER 1",
    }
    assert counts.reasons["personal data"] == 2 and counts.quarantined == 2
    assert "<EMAIL_ADDRESS>" in next(q.raw for q in quarantined if q.external_id == "mail-1")
    _no_values_in(*(q.raw for q in quarantined), *(q.reason for q in quarantined))


def test_allow_stores_as_sent_and_only_some_fields_and_kinds_are_scanned(sessions, project, tmp_path) -> None:
    counts, items, _ = _ingest(sessions, project, tmp_path, action="allow")
    assert EMAIL in items["mail-1"].payload["prompt"]
    assert items["mail-1"].personal_data == {"action": "allow", "kinds": {"EMAIL_ADDRESS": 1}}

    counts, items, _ = _ingest(
        sessions, project, tmp_path, "b-", action="redact", fields=["model_answer"], kinds=["EMAIL_ADDRESS"]
    )
    assert PHONE in items["many-1"].payload["prompt"], "the prompt is not scanned"
    assert items["many-1"].payload["model_answer"] == "Write to <EMAIL_ADDRESS>."
    assert counts.personal_data == {"EMAIL_ADDRESS": 1}


def test_a_policy_must_name_text_input_fields(sample_spec) -> None:
    data = sample_spec.model_dump(mode="json")
    data["project"]["privacy"] = {"action": "redact", "fields": ["nope"]}
    with pytest.raises(SpecError, match=r"privacy\.fields: 'nope' is not a text input field"):
        parse_spec(data)
    data["project"]["privacy"] = {"action": "shred"}
    with pytest.raises(SpecError, match=r"privacy\.action"):
        parse_spec(data)


def test_each_kind_is_found_and_a_finding_never_spans_two_texts() -> None:
    texts = [
        "IBAN GB82WEST12345698765432 at the branch.",
        "The server 10.20.30.40 answered.",
        "SSN 536-22-8345 on the form.",
        "ends with 415-555",
        "0132 starts this one",
    ]
    found = scan(texts, PERSONAL_DATA_KINDS, 0.4)
    assert [[f.kind for f in spans] for spans in found] == [["IBAN_CODE"], ["IP_ADDRESS"], ["US_SSN"], [], []]
    assert texts[0][found[0][0].start : found[0][0].end] == "GB82WEST12345698765432"


def test_the_ingest_flow_reports_what_it_found_and_never_the_values(app_env, prefect_api, sample_spec, tmp_path):
    from typer.testing import CliRunner

    from app.cli import app
    from nightshift.platform.db import make_engine, make_sessionmaker

    sessions = make_sessionmaker(make_engine(app_env))
    with transaction(sessions) as session:
        apply_spec(session, with_privacy(sample_spec, action="redact"))
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps(good_row("mail-1", prompt=f"Write to {EMAIL} about the loan.")) + "\n")
    result = CliRunner().invoke(app, ["ingest", str(path), "-p", sample_spec.project.slug], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "personal data found: EMAIL_ADDRESS 1" in result.output
    _no_values_in(result.output)
    result = CliRunner().invoke(app, ["ingest", str(path), "-p", sample_spec.project.slug, "--json", "--force"])
    assert json.loads(result.output)["files"][0]["personal_data"] == {"EMAIL_ADDRESS": 1}


def test_a_row_refused_for_another_reason_is_masked_too(sessions, project, tmp_path) -> None:
    with transaction(sessions) as session:
        apply_spec(session, with_privacy(project, action="redact"))
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(good_row("lang-1", language="xx", prompt=f"Write to {EMAIL} today.")) + "\n")
    ingest_file(sessions, path)
    with sessions() as session:
        [row] = session.scalars(select(QuarantinedRow)).all()
    assert row.reason.startswith("language is not one of") and "<EMAIL_ADDRESS>" in row.raw
    _no_values_in(row.raw)
