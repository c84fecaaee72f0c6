"""A running web service over a real database: two clients, their batches, experts holding work."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from app.web import ServiceThread, create_app
from nightshift import resources as root
from nightshift.dispatch.assignments import dispatch_batch
from nightshift.platform.db import transaction
from nightshift.platform.keys import issue_key
from nightshift.platform.models import Assignment, Client, Expert, Item, utcnow
from nightshift.projects.registry import apply_spec
from nightshift.projects.spec import ProjectSpec, parse_spec
from nightshift.resources import Resources

# Real Chromium, for every page test of the workbench.
from tests.app.browser import browser as browser
from tests.nightshift.ingest.test_ingest import good_row, ingest_file


@dataclass
class World:
    url: str
    sessions: object
    batches: dict[str, int]
    client_keys: dict[str, str]
    # handle → token, for two annotators holding work in acme's batch and one reviewer.
    experts: dict[str, str] = field(default_factory=dict)
    annotators: tuple[str, str] = ("", "")
    reviewer: str = ""
    resources: Resources | None = None

    def http(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def open_tasks(self, handle: str) -> list[int]:
        with self.sessions() as session:  # type: ignore[operator]
            return list(
                session.scalars(
                    select(Assignment.id)
                    .join(Expert, Expert.id == Assignment.expert_id)
                    .where(Expert.handle == handle, Assignment.status == "assigned", Assignment.role == "annotate")
                    .order_by(Assignment.id)
                )
            )


def second_client_spec(spec: ProjectSpec) -> ProjectSpec:
    data = spec.model_dump(mode="json")
    data["client"].update(slug="globex", name="Globex", webhook_url=None, webhook_secret=None)
    data["project"].update(slug="globex-scenarios", name="Globex grading")
    return parse_spec(data)


def _items(path: Path, prefix: str, n: int) -> Path:
    path.write_text("".join(json.dumps(good_row(f"{prefix}-{i}")) + "\n" for i in range(n)))
    return path


@pytest.fixture
def world(sessions, project, db_url: str, tmp_path: Path) -> Iterator[World]:
    with transaction(sessions) as session:
        apply_spec(session, second_client_spec(project))
    acme, _ = ingest_file(sessions, _items(tmp_path / "acme.jsonl", "a", 6))
    globex, _ = ingest_file(sessions, _items(tmp_path / "globex.jsonl", "g", 3), project="globex-scenarios")
    with transaction(sessions) as session:
        for batch in (acme, globex):
            dispatch_batch(session, batch, utcnow())
        holders = list(
            session.execute(
                select(Expert.handle, Expert.id)
                .join(Assignment, Assignment.expert_id == Expert.id)
                .join(Item, Item.id == Assignment.item_id)
                .where(Item.batch_id == acme)
                .distinct()
                .order_by(Expert.handle)
            )
        )
        busy = {h for h, _ in holders}
        reviewer = session.execute(
            select(Expert.handle, Expert.id).where(Expert.tier == "reviewer", Expert.handle.not_in(busy)).limit(1)
        ).one()
        people = [*holders[:2], tuple(reviewer)]
        experts = {handle: issue_key(session, "expert", eid).key for handle, eid in people}
        clients = dict(session.execute(select(Client.slug, Client.id)).all())
        client_keys = {slug: issue_key(session, "client", cid).key for slug, cid in clients.items()}
    # Batch URLs may point at this machine's stand-in file servers; nothing else that is not public.
    settings = root.load_settings(
        database_url=db_url,
        home=tmp_path / "home",
        delivery_dir=tmp_path / "deliveries",
        source_allowlist=["127.0.0.1"],
        max_upload_bytes=256 * 1024,
    )
    resources = root.build(settings)
    with ServiceThread(create_app(resources)) as server:
        yield World(
            url=server.url,
            sessions=sessions,
            batches={"acme": acme, "globex": globex},
            client_keys=client_keys,
            experts=experts,
            annotators=(holders[0][0], holders[1][0]),
            reviewer=reviewer[0],
            resources=resources,
        )
    resources.close()
