from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nightshift.platform.db import transaction
from nightshift.platform.errors import SpecError
from nightshift.projects.registry import apply_spec, project_spec
from nightshift.projects.spec import load_spec, parse_spec
from tests.conftest import SAMPLES


def _sample() -> dict:
    return yaml.safe_load((SAMPLES / "spec.yaml").read_text())


def test_sample_spec_models_the_real_job() -> None:
    spec = load_spec(SAMPLES / "spec.yaml")
    kinds = {label.name: label.type for label in spec.project.labels}
    assert kinds == {
        "rating": "ordinal_scale",
        "error_tags": "multi_choice",
        "rationale": "free_text",
        "improved_prompt": "free_text",
    }
    assert spec.project.label("rating").max == 7


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["project"].pop("labels"), "project.labels: Field required"),
        (lambda d: d["project"]["overlap"].update(min=4, max=2), "project.overlap: Value error, max must be"),
        (lambda d: d["project"]["labels"][0].update(type="slider"), "project.labels.0: Input tag 'slider'"),
        (lambda d: d["project"]["labels"][0].update(min=7, max=1), "project.labels.0.ordinal_scale"),
        (
            lambda d: d["client"].pop("webhook_secret"),
            "client: Value error, webhook_url needs webhook_secret",
        ),
        (lambda d: d["project"].update(gold_rate=0.9), "project.gold_rate: Input should be less than"),
        (lambda d: d["project"].update(colour="blue"), "project.colour: Extra inputs are not permitted"),
        (lambda d: d["client"].update(slug="Not A Slug"), "client.slug: String should match pattern"),
    ],
)
def test_a_spec_with_an_error_is_refused_with_field_and_reason(change, expected: str) -> None:
    data = _sample()
    change(data)
    with pytest.raises(SpecError) as caught:
        parse_spec(data, "spec.yaml")
    assert str(caught.value).startswith(f"spec.yaml: {expected}"), str(caught.value)


def test_unreadable_spec_files_get_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("client: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(broken)
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec(tmp_path / "missing.yaml")
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just text\n")
    with pytest.raises(SpecError, match="expected a mapping"):
        load_spec(scalar)


def test_applying_a_changed_spec_makes_a_new_version(sessions, sample_spec) -> None:
    with transaction(sessions) as session:
        first = apply_spec(session, sample_spec)
        again = apply_spec(session, sample_spec)
    assert (first.spec_version, first.changed) == (1, True)
    assert (again.spec_version, again.changed) == (1, False)

    data = _sample()
    data["project"]["overlap"]["min"] = 2
    with transaction(sessions) as session:
        changed = apply_spec(session, parse_spec(data))
        stored = project_spec(session, 1)
    assert (changed.spec_version, changed.changed) == (2, True)
    assert stored.project.overlap.min == 2
    assert stored.client.webhook_secret is not None and stored.client.webhook_secret.env == "ACME_WEBHOOK_SECRET"
