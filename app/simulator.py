"""`nightshift simulate`: synthetic experts of known accuracy and speed work through the expert API.

They take the same path as real experts, over HTTP: fetch the next task (which starts its clock on
the server), think, submit. Time is compressed by time_scale: an expert who would take 20 minutes
waits 20 min * time_scale, and the server measures what really passed, so a project simulated at
1/600 needs its time-on-task gate scaled to match (the demo does this).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import TypeAdapter
from sqlalchemy import distinct, select, update
from sqlalchemy.orm import Session

from nightshift.ingest import content_hash
from nightshift.keys import issue_key
from nightshift.models import ApiKey, Assignment, Expert, Item, utcnow
from nightshift.spec import Label
from nightshift.synthetic import simulated_answer

LABELS = TypeAdapter(list[Label])


@dataclass
class SimulationReport:
    experts: int = 0
    submitted: int = 0
    refused: int = 0
    closed: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)


def issue_tokens(session: Session, batch_id: int, limit: int | None = None) -> dict[str, tuple[int, str]]:
    """A fresh personal token for each synthetic expert with open work in the batch: handle → (key id, token).
    The simulator revokes them when it is done (revoke_tokens)."""
    query = (
        select(distinct(Expert.handle), Expert.id)
        .join(Assignment, Assignment.expert_id == Expert.id)
        .join(Item, Item.id == Assignment.item_id)
        .where(
            Item.batch_id == batch_id,
            Assignment.status == "assigned",
            Assignment.role == "annotate",
            Expert.status == "active",
        )
        .order_by(Expert.id)
    )
    if limit:
        query = query.limit(limit)
    tokens = {}
    for handle, expert_id in session.execute(query).tuples():
        issued = issue_key(session, "expert", expert_id)
        tokens[handle] = (issued.key_id, issued.key)
    return tokens


def revoke_tokens(session: Session, key_ids: list[int]) -> None:
    if key_ids:
        session.execute(update(ApiKey).where(ApiKey.id.in_(key_ids)).values(revoked_at=utcnow()))


def _work(base_url: str, handle: str, token: str, time_scale: float, report: SimulationReport) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as http:
        while True:
            got = http.get("/api/expert/assignments/next")
            if got.status_code == 204:
                return
            got.raise_for_status()
            task: dict[str, Any] = got.json()
            item = {k: v for k, v in task["item"].items() if k != "external_id"}
            labels = LABELS.validate_python(task["labels"])
            answer, seconds = simulated_answer(content_hash(item), handle, labels, task["expected_minutes"])
            time.sleep(seconds * time_scale)
            sent = http.post(f"/api/expert/assignments/{task['assignment_id']}/submission", json={"answer": answer})
            if sent.status_code == 201:
                report.add(submitted=1)
            elif sent.status_code == 422:
                report.add(refused=1)
            elif sent.status_code == 409:
                report.add(closed=1)
            else:
                sent.raise_for_status()


def play(
    base_url: str, tokens: dict[str, str], time_scale: float = 1 / 600, concurrency: int = 100
) -> SimulationReport:
    """Each expert works through their open tasks one after another; up to `concurrency` at once."""
    report = SimulationReport(experts=len(tokens))
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(tokens) or 1))) as pool:
        futures = {
            handle: pool.submit(_work, base_url, handle, token, time_scale, report) for handle, token in tokens.items()
        }
        for handle, future in futures.items():
            error = future.exception()
            if error is not None:
                # The handle is an internal name: fine for the operator's console, never for a client.
                report.errors.append(f"{handle}: {type(error).__name__}: {error}")
    report.seconds = time.perf_counter() - started
    return report
