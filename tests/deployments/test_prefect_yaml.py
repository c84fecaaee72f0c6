from __future__ import annotations

from prefect.utilities.callables import parameter_schema

from deployments.serve import build_deployments, declared_deployments, load_flow


def test_every_entrypoint_imports_and_builds_a_form_schema() -> None:
    entries = declared_deployments()
    assert {e["name"] for e in entries} == {
        "ingest",
        "generate",
        "dispatch",
        "simulate",
        "review",
        "advance-batch",
        "deliver",
        "nightly",
        "payouts",
        "raise-budget",
        "retention-purge",
    }
    for entry in entries:
        flow = load_flow(entry["entrypoint"])
        schema = parameter_schema(flow.fn).model_dump()
        assert list(schema["properties"]) == ["params"], entry["name"]
        # The parameter model's fields, with their descriptions, are what the Prefect UI renders as a form.
        model = next(iter(schema["definitions"].values()))
        assert model["properties"], entry["name"]
        assert all(field.get("description") for field in model["properties"].values()), entry["name"]
        if entry["name"] == "advance-batch":
            # A Literal becomes a drop-down of its choices.
            assert model["properties"]["delivery"]["enum"] == ["in-flow", "on-event"]


def test_a_batch_passing_its_gates_starts_its_delivery_through_the_deploy_trigger() -> None:
    deliver = next(d for d in build_deployments() if d.name == "deliver")
    [trigger] = deliver.triggers
    assert trigger.expect == {"nightshift.batch.passed"}
    assert trigger.match.root == {"prefect.resource.id": "nightshift.batch.*"}
    assert trigger.parameters == {"params": {"batch_id": "{{ event.payload.batch_id }}"}}
    advance = next(d for d in build_deployments() if d.name == "advance-batch")
    assert not advance.schedules and not advance.triggers


def test_the_nightly_deployment_runs_on_a_cron_in_an_explicit_time_zone_without_overlap() -> None:
    nightly = next(d for d in build_deployments() if d.name == "nightly")
    [schedule] = nightly.schedules
    assert schedule.schedule.cron == "0 2 * * *"
    assert schedule.schedule.timezone == "UTC"
    assert nightly.concurrency_limit == 1
    assert nightly.concurrency_options.collision_strategy == "CANCEL_NEW"


def test_payouts_run_weekly_on_monday_morning_without_overlap() -> None:
    payouts = next(d for d in build_deployments() if d.name == "payouts")
    [schedule] = payouts.schedules
    assert schedule.schedule.cron == "0 6 * * 1"
    assert schedule.schedule.timezone == "UTC"
    assert payouts.concurrency_limit == 1


def test_the_retention_purge_runs_nightly_without_overlap() -> None:
    purge = next(d for d in build_deployments() if d.name == "retention-purge")
    [schedule] = purge.schedules
    assert schedule.schedule.cron == "30 3 * * *" and schedule.schedule.timezone == "UTC"
    assert purge.concurrency_limit == 1
