"""The expert simulator: synthetic experts of known accuracy and speed do open work.

play() is what `nightshift simulate` and the demo use: the experts work through the expert API
over HTTP, the same path as real experts: fetch the next task (which starts its clock on the
server), think, submit. Time is compressed by time_scale: an expert who would take 20 minutes
waits 20 min * time_scale, and the server measures what really passed, so a project simulated
at 1/600 needs its time-on-task gate scaled to match (the demo does this).

simulate_work() writes submissions directly: only for benchmarks of the later stages, which need
hundreds of thousands of submissions faster than HTTP gives them.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import TypeAdapter
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from nightshift.fields import field_type
from nightshift.generate.responses import answers_in
from nightshift.ingest.rows import content_hash
from nightshift.platform.db import transaction
from nightshift.platform.keys import issue_key
from nightshift.platform.models import ApiKey, Assignment, Expert, Item, utcnow
from nightshift.platform.sql import matches_any
from nightshift.projects.registry import batch_body
from nightshift.projects.spec import Label, ProjectBody
from nightshift.review import decisions
from nightshift.simulation.synthetic import simulated_answer
from nightshift.work import answers
from nightshift.work.answers import ANSWERING_ROLES, skip_task
from nightshift.work.submissions import NewSubmission, answer_errors, record_submissions, start_assignments

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
    """A fresh personal token for each synthetic expert with open work in the batch, and for the
    adjudicators when items of it wait for one: handle → (key id, token).
    The simulator revokes them when it is done (revoke_tokens)."""
    workers = (
        select(Assignment.expert_id)
        .join(Item, Item.id == Assignment.item_id)
        .where(Item.batch_id == batch_id, Assignment.status == "assigned", Assignment.role.in_(ANSWERING_ROLES))
    )
    waiting = select(Item.id).where(Item.batch_id == batch_id, Item.status == "adjudication").exists()
    query = (
        select(Expert.handle, Expert.id)
        .where(Expert.status == "active", or_(Expert.id.in_(workers), and_(Expert.tier == "adjudicator", waiting)))
        .order_by(Expert.id)
    )
    if limit:
        query = query.limit(limit)
    tokens = {}
    for handle, expert_id in session.execute(query):
        issued = issue_key(session, "expert", expert_id)
        tokens[handle] = (issued.key_id, issued.key)
    return tokens


def revoke_tokens(session: Session, key_ids: list[int]) -> None:
    if key_ids:
        session.execute(update(ApiKey).where(ApiKey.id.in_(key_ids)).values(revoked_at=utcnow()))


def _do_task(http: httpx.Client, handle: str, assignment_id: int, time_scale: float, report: SimulationReport) -> None:
    got = http.get(f"/api/expert/assignments/{assignment_id}")  # opening it starts its clock
    got.raise_for_status()
    _answer_task(http, handle, got.json(), time_scale, report)


def _answer_task(
    http: httpx.Client, handle: str, task: dict[str, Any], time_scale: float, report: SimulationReport
) -> None:
    if task["status"] != "assigned":
        report.add(closed=1)
        return
    item = {k: v for k, v in task["item"].items() if k != "external_id"}
    labels = LABELS.validate_python(task["labels"])
    responses = {r["label"]: r["content"] for r in task.get("responses") or []}
    answer, seconds = simulated_answer(content_hash(item), handle, labels, task["expected_minutes"], responses)
    # A rewrite is run (a chat held) against the model before it is submitted, as the workbench
    # has experts do; an expert out of runs for the hour passes the task on rather than leave it open.
    for label in labels:
        kind = field_type(label)
        answered: list[tuple[int, str, str]] = []
        for prompt in kind.runs_to_ask(label, answer.get(label.name)):
            ran = http.post(
                f"/api/expert/assignments/{task['assignment_id']}/runs", json={"label": label.name, "prompt": prompt}
            )
            if ran.status_code == 429:
                skipped = http.post(
                    f"/api/expert/assignments/{task['assignment_id']}/skip", json={"reason": OUT_OF_RUNS}
                )
                if skipped.status_code not in (204, 409):
                    skipped.raise_for_status()
                report.add(closed=1)
                return
            if ran.status_code != 201 or ran.json()["status"] != "ok":
                break
            got = ran.json()
            answered.append((got["run_id"], got["prompt"], got["content"] or ""))
        if answered and len(answered) == len(kind.runs_to_ask(label, answer.get(label.name))):
            answer[label.name] = kind.cite(label, answer[label.name], answered)
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


def _work(
    base_url: str, handle: str, token: str, time_scale: float, tasks_at_once: int, report: SimulationReport
) -> None:
    """One expert: their open annotation tasks, up to tasks_at_once of them open at a time."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as http:
        seen: set[int] = set()
        while True:
            listed = http.get("/api/expert/assignments", params={"role": "annotate", "limit": 500})
            listed.raise_for_status()
            todo = [t["assignment_id"] for t in listed.json() if t["assignment_id"] not in seen]
            if not todo:
                break
            seen.update(todo)
            with ThreadPoolExecutor(max_workers=tasks_at_once) as desk:
                for done in [desk.submit(_do_task, http, handle, tid, time_scale, report) for tid in todo]:
                    done.result()
        # Adjudicators then decide the items waiting for one (others are answered 204 at once).
        while (claimed := http.post("/api/expert/adjudications/next")).status_code == 200:
            task = claimed.json()
            if task["assignment_id"] in seen:
                return  # answered once and refused: a real expert would ask ops, not loop
            seen.add(task["assignment_id"])
            _answer_task(http, handle, task, time_scale, report)
        if claimed.status_code != 204:
            claimed.raise_for_status()


def play(
    base_url: str,
    tokens: dict[str, str],
    time_scale: float = 1 / 600,
    concurrency: int = 100,
    tasks_at_once: int = 1,
) -> SimulationReport:
    """Up to `concurrency` experts work at once, each through their own open tasks."""
    report = SimulationReport(experts=len(tokens))
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(tokens) or 1))) as pool:
        futures = {
            handle: pool.submit(_work, base_url, handle, token, time_scale, tasks_at_once, report)
            for handle, token in tokens.items()
        }
        for handle, future in futures.items():
            error = future.exception()
            if error is not None:
                # The handle is an internal name: fine for the operator's console, never for a client.
                report.errors.append(f"{handle}: {type(error).__name__}: {error}")
    report.seconds = time.perf_counter() - started
    return report


def open_assignments(session: Session, batch_id: int) -> list[int]:
    return list(
        session.scalars(
            select(Assignment.id)
            .join(Item, Item.id == Assignment.item_id)
            .where(Item.batch_id == batch_id, Assignment.status == "assigned", Assignment.role == "annotate")
            .order_by(Assignment.id)
        )
    )


def _responses(session: Session, project: ProjectBody, item_ids: list[int]) -> dict[int, dict[str, str]]:
    """The items' model answers by label, as their experts see them."""
    if not item_ids or project.generation is None:
        return {}
    endpoints = [e.name for e in project.generation.endpoints]
    shown = answers_in(session, min(item_ids), max(item_ids), endpoints)
    return {item_id: {s.label: s.content for s in found} for item_id, found in shown.items()}


OUT_OF_RUNS = "out of model runs for the hour"
# Runs a rewritten prompt (a chat's message) for (expert, assignment, label, prompt): the answered
# run's (id, prompt, answer), or None.
RunRewrite = Callable[[int, int, str, str], tuple[int, str, str] | None]


def _cite_runs(answer: dict[str, Any], labels: Sequence[Label], run: RunRewrite | None, expert: int, task: int) -> None:
    """A simulated rewrite is run against the model before it is submitted, as experts do."""
    if run is None:
        return
    for label in labels:
        kind = field_type(label)
        ran: list[tuple[int, str, str]] = []
        for prompt in (asked := kind.runs_to_ask(label, answer.get(label.name))):
            answered = run(expert, task, label.name, prompt)
            if answered is None:
                break
            ran.append(answered)
        if asked and len(ran) == len(asked):
            answer[label.name] = kind.cite(label, answer[label.name], ran)


def _uncited(answer: dict[str, Any], labels: Sequence[Label]) -> bool:
    """A rewrite (a chat) the simulated expert could not run."""
    return any(field_type(label).runs_to_ask(label, answer.get(label.name)) for label in labels)


def simulate_work(session: Session, batch_id: int, assignment_ids: list[int], run: RunRewrite | None = None) -> int:
    """Each assigned expert answers as their profile says; returns how many submissions were stored.
    run: how a simulated rewrite is run against the model (without it, rewrites go unanswered)."""
    project = batch_body(session, batch_id)
    rows = session.execute(
        select(Assignment.id, Item.content_hash, Expert.handle, Item.id, Expert.id)
        .join(Item, Item.id == Assignment.item_id)
        .join(Expert, Expert.id == Assignment.expert_id)
        # One array parameter on PostgreSQL: a round of a big batch has more ids than the 65,535
        # parameters a statement may bind.
        .where(matches_any(session, Assignment.id, assignment_ids), Assignment.status == "assigned")
    ).all()
    now = utcnow()
    submissions = []
    opened: dict[int, dt.datetime] = {}
    shown = _responses(session, project, [row[3] for row in rows])
    for assignment_id, item_hash, handle, item_id, expert_id in rows:
        answer, seconds = simulated_answer(
            item_hash, handle, project.labels, project.expected_minutes_per_item, shown.get(item_id)
        )
        _cite_runs(answer, project.labels, run, expert_id, assignment_id)
        errors = answer_errors(answer, project)
        if errors and run is not None and _uncited(answer, project.labels):
            # Out of runs (or the model did not answer): the expert passes the task on.
            skip_task(session, expert_id, assignment_id, OUT_OF_RUNS)
            continue
        if not errors:
            submissions.append(NewSubmission(assignment_id, answer))
            # The simulated expert opened the task as long ago as they took to answer it; the
            # server clock measures the rest, as for a real expert.
            opened[assignment_id] = now - dt.timedelta(seconds=seconds)
    start_assignments(session, opened)
    return record_submissions(session, submissions, now)


def simulate_adjudications(
    sessions: sessionmaker[Session], batch_id: int, now: dt.datetime | None = None, run: RunRewrite | None = None
) -> int:
    """The pool's adjudicators decide the batch's items waiting for one, through the workbench's
    own claim and submit, each claim and each answer a transaction of its own (a task's model runs,
    asked between them in transactions of their own, see it claimed); returns how many they answered."""
    moment = now or utcnow()
    with sessions() as session:
        project = batch_body(session, batch_id)
        adjudicators = session.execute(
            select(Expert.id, Expert.handle)
            .where(Expert.tier == "adjudicator", Expert.status == "active")
            .order_by(Expert.id)
        ).all()
        # Each claim looks through every item waiting anywhere: ask only while this batch has some.
        waiting = session.scalar(
            select(func.count()).select_from(Item).where(Item.batch_id == batch_id, Item.status == "adjudication")
        )
    answered = 0
    for expert_id, handle in adjudicators:
        if answered >= (waiting or 0):
            break
        while True:
            with transaction(sessions) as session:
                assignment_id = decisions.claim_adjudication(session, expert_id, moment)
                if assignment_id is None:
                    break
                item_hash, item_id = session.execute(
                    select(Item.content_hash, Item.id)
                    .join(Assignment, Assignment.item_id == Item.id)
                    .where(Assignment.id == assignment_id)
                ).one()
                answer, seconds = simulated_answer(
                    item_hash,
                    handle,
                    project.labels,
                    project.expected_minutes_per_item,
                    _responses(session, project, [item_id]).get(item_id),
                )
            _cite_runs(answer, project.labels, run, expert_id, assignment_id)
            with transaction(sessions) as session:
                start_assignments(session, {assignment_id: moment - dt.timedelta(seconds=seconds)})
                answers.submit_answer(session, expert_id, assignment_id, answer, moment)
            answered += 1
    return answered
