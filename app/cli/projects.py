"""Commands for who the work is for and who does it: projects, clients, experts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import JsonFlag, emit, ready_sessions, resources, settings
from nightshift.platform.errors import NightshiftError

project_app = typer.Typer(help="Client projects.", no_args_is_help=True)
experts_app = typer.Typer(help="The expert registry.", no_args_is_help=True)
clients_app = typer.Typer(help="Clients' webhook endpoints and their signing secrets.", no_args_is_help=True)


@project_app.command("apply")
def project_apply(file: Annotated[Path, typer.Argument(help="Project spec YAML.")]) -> None:
    """Create or update a client and project from a spec file."""
    from nightshift.delivery.endpoints import check_webhook_url
    from nightshift.platform.db import transaction
    from nightshift.projects.registry import apply_spec
    from nightshift.projects.spec import load_spec

    spec = load_spec(file)
    if spec.client.webhook_url:
        # Refused now, in one line, rather than at the first send; every send checks it again.
        check_webhook_url(spec.client.webhook_url, settings().webhook_http_allowlist)
    with transaction(ready_sessions()) as session:
        applied = apply_spec(session, spec)
    state = "changed" if applied.changed else "unchanged"
    where = f"project {applied.project_slug} (client {applied.client_slug})"
    typer.echo(f"{where}: spec v{applied.spec_version}, {state}")


@experts_app.command("import")
def experts_import(file: Annotated[Path, typer.Argument(help="Experts as CSV or JSONL.")]) -> None:
    """Add or update experts; bad rows are listed and nothing is written if any row is bad."""
    from nightshift.experts.registry import import_experts, parse_experts
    from nightshift.platform.db import transaction

    rows, errors = parse_experts(file)
    if errors:
        for error in errors[:50]:
            typer.echo(error, err=True)
        raise NightshiftError(f"{len(errors)} bad rows in {file}: nothing imported")
    with transaction(ready_sessions()) as session:
        created = import_experts(session, rows)
    typer.echo(f"{len(rows)} experts imported ({created} new)")


@experts_app.command("set-status")
def experts_set_status(handle: str, status: Annotated[str, typer.Argument(help="active, paused or banned")]) -> None:
    """Pause, ban or reactivate an expert."""
    from nightshift.experts.registry import set_status
    from nightshift.platform.db import transaction

    if status not in ("active", "paused", "banned"):
        raise NightshiftError("status must be active, paused or banned")
    with transaction(ready_sessions()) as session:
        set_status(session, handle, status, "cli")  # type: ignore[arg-type]
    typer.echo(f"{handle}: {status}")


@experts_app.command("show")
def experts_show(handle: str, as_json: JsonFlag = False) -> None:
    """An expert's skills, languages, reliability (gold, agreement, misses) and work history."""
    from nightshift.reports.experts import expert_profile

    with ready_sessions()() as session:
        profile = expert_profile(session, handle)
    gold, agreement = profile["gold"], profile["agreement"]
    emit(
        profile,
        as_json,
        [
            f"{profile['handle']} ({profile['tier']}, {profile['status']}), {profile['timezone']}, {profile['window']}",
            f"skills {', '.join(profile['skills'])}; languages {', '.join(profile['languages'])}; "
            f"capacity {profile['capacity']}",
            f"reliability {profile['reliability']:.3f} (prior {profile['reliability_prior']}): "
            f"gold {gold['correct']}/{gold['answered']}, agreement {agreement['agreed']}/{agreement['answered']}, "
            f"{profile['missed_deadlines']} missed deadlines",
            f"quality {profile['quality']['estimate']:.3f}, 90% between {profile['quality']['interval_90'][0]:.3f}"
            f" and {profile['quality']['interval_90'][1]:.3f}, on {profile['quality']['evidence']:g} judged answers",
            "assignments: " + (", ".join(f"{k} {n}" for k, n in sorted(profile["assignments"].items())) or "none"),
            *(f"{h['at']}: {h['from']} -> {h['to']} by {h['by']}" for h in profile["status_history"]),
        ],
    )


@experts_app.command("quality")
def experts_quality(
    batch: Annotated[int, typer.Option(help="The batch whose experts to list.")], as_json: JsonFlag = False
) -> None:
    """The quality model's view of a batch's experts: estimate, 90% interval, evidence; least sure first."""
    from nightshift.reports.experts import quality_table

    with ready_sessions()() as session:
        rows = quality_table(session, batch)
    emit(
        rows,
        as_json,
        [
            f"{r['expert']:<20} {r['tier']:<12} {r['status']:<8} {r['estimate']:.3f}"
            f" [{r['interval_90'][0]:.3f}, {r['interval_90'][1]:.3f}] on {r['evidence']:g},"
            f" {r['answers in batch']} answers"
            for r in rows
        ],
    )


@clients_app.command("enable-webhook")
def clients_enable_webhook(client: str) -> None:
    """Enable an endpoint disabled by a 410; its waiting pages are due at once."""
    from nightshift.delivery.endpoints import enable_endpoint
    from nightshift.platform.db import transaction
    from nightshift.platform.models import utcnow
    from nightshift.projects.clients import client_by_slug

    with transaction(ready_sessions()) as session:
        waiting = enable_endpoint(session, client_by_slug(session, client), utcnow())
    typer.echo(f"{client}: webhook enabled, {waiting} pages due now")


@clients_app.command("rotate-secret")
def clients_rotate_secret(
    client: str,
    finish: Annotated[bool, typer.Option("--finish", help="End the rotation: drop the old secret.")] = False,
) -> None:
    """Start a signing-secret rotation (new and old both sign) or finish it (the new one alone)."""
    from nightshift.delivery.endpoints import new_webhook_secret
    from nightshift.projects.clients import client_by_slug

    with ready_sessions()() as session:
        ref = client_by_slug(session, client).webhook_secret_ref
    if not ref:
        raise NightshiftError(f"client {client} has no webhook secret")
    secrets = resources().secrets
    current = secrets.resolve(ref)
    if finish:
        secrets.store(ref, current[:1])
        typer.echo(f"{client}: rotation finished, signing with the new secret only")
        return
    fresh = new_webhook_secret()
    secrets.store(ref, [fresh, current[0]])
    # Shown once, to the operator who asked, for the client; never logged.
    typer.echo(f"{client}: both secrets sign now. Give the client the new secret, then run --finish:")
    typer.echo(fresh)


@clients_app.command("api-key")
def clients_api_key(
    client: str,
    rotate: Annotated[bool, typer.Option("--rotate", help="Revoke the client's other keys.")] = False,
) -> None:
    """Issue an API key for a client's systems (shown once; only its hash is kept)."""
    from nightshift.platform.db import transaction
    from nightshift.platform.keys import issue_key, rotate_key
    from nightshift.projects.clients import client_by_slug

    with transaction(ready_sessions()) as session:
        client_id = client_by_slug(session, client).id
        issued, revoked = (
            rotate_key(session, "client", client_id) if rotate else (issue_key(session, "client", client_id), 0)
        )
    typer.echo(f"{client}: API key {issued.prefix}… issued; {revoked} older keys revoked. Shown once:")
    typer.echo(issued.key)


@experts_app.command("token")
def experts_token(
    handle: str,
    rotate: Annotated[bool, typer.Option("--rotate", help="Revoke the expert's other tokens.")] = False,
) -> None:
    """Issue a personal token an expert signs in with (shown once; only its hash is kept)."""
    from nightshift.platform.db import transaction
    from nightshift.platform.keys import issue_key, owner_id, rotate_key

    with transaction(ready_sessions()) as session:
        expert_id = owner_id(session, "expert", handle)
        issued, revoked = (
            rotate_key(session, "expert", expert_id) if rotate else (issue_key(session, "expert", expert_id), 0)
        )
    typer.echo(f"{handle}: token {issued.prefix}… issued; {revoked} older tokens revoked. Shown once:")
    typer.echo(issued.key)
