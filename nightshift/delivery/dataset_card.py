"""The delivery's dataset card (README.md): the Hugging Face layout that `datasets.load_dataset`
reads from the delivery's folder (one config per file), and what a client's data team needs to
trust the data: the project's schema, agreement between experts, and a summary of the lineage."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nightshift.delivery.records import DELIVERABLE
from nightshift.generate.responses import counts as generation_counts
from nightshift.platform.models import Assignment, Batch, GateRun, Item, ItemResult, Project
from nightshift.projects.spec import ProjectBody
from nightshift.review.standings import model_standings

CARD = "README.md"


@dataclass(frozen=True)
class CardFacts:
    project_slug: str
    project_name: str
    batch_id: int
    version: int
    spec_version: int
    records: int
    files: dict[str, dict[str, Any]]  # config name -> the file's entry (name, rows)


def write_dataset_card(session: Session, facts: CardFacts, body: ProjectBody, folder: Path) -> dict[str, Any]:
    """Write folder/README.md; returns its file entry."""
    configs = [
        {
            "config_name": name,
            "data_files": [{"split": "train", "path": entry["name"]}],
            **({"default": True} if name == "records" else {}),
        }
        for name, entry in facts.files.items()
    ]
    header = yaml.safe_dump(
        {"configs": configs, "pretty_name": f"{facts.project_name}, batch {facts.batch_id}"}, sort_keys=False
    )
    lines = [
        "---",
        header.rstrip(),
        "---",
        f"# {facts.project_name}: batch {facts.batch_id}, delivery v{facts.version}",
        "",
        f"Project `{facts.project_slug}`, spec version {facts.spec_version}. {facts.records:,} records.",
        "",
        "## Files",
        "",
        "| config | file | rows | what |",
        "|---|---|---|---|",
    ]
    what = {
        "records": "final answers with method, agreement and lineage (JSON text columns)",
        "sft": "chat `messages`: the prompt and the best response (TRL SFT, conversational)",
        "preference": "`prompt`, `chosen`, `rejected` (TRL DPO, conversational), with the Bradley-Terry `margin`",
        "reward": "`prompt`, `completion`, `score`: each response's Bradley-Terry score, or its rating scaled 0..1",
    }
    for name, entry in facts.files.items():
        rows = entry.get("rows", facts.records if name == "records" else "")
        lines.append(f"| {name} | `{entry['name']}` | {rows} | {what.get(name, '')} |")
    lines += ["", 'Load a config with `datasets.load_dataset("<this folder>", "preference")`.', ""]
    lines += ["## Schema", "", "| label | type | details |", "|---|---|---|"]
    for label in body.labels:
        data = label.model_dump(mode="json", exclude={"name", "type", "description"})
        details = ", ".join(f"{k}: {_brief(v)}" for k, v in data.items() if v not in (None, [], ""))
        lines.append(f"| {label.name} | {label.type} | {_cell(details)} |")
    lines += ["", "## Agreement", ""]
    alphas, mean_agreement = _agreement(session, facts.batch_id)
    lines.append(f"Mean share of experts agreeing with each final answer: {_num(mean_agreement)}.")
    lines.append("")
    if alphas:
        lines += ["| label | Krippendorff's alpha |", "|---|---|"]
        lines += [f"| {name} | {_num(value)} |" for name, value in alphas.items()]
    for name, standings in model_standings(session, facts.batch_id, body).items():
        lines += [
            "",
            f"## Models by `{name}`",
            "",
            "Bradley-Terry over every pair the experts' accepted rankings order, across the batch.",
            "",
            "| response | endpoint | model | score | 95% interval | ranked first |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {s.label} | {s.endpoint} | {_cell(s.model)} | {s.score:+.3f} | "
            f"{s.low:+.3f} .. {s.high:+.3f} | {s.first} |"
            for s in standings
        ]
    lines += ["", "## Lineage", ""]
    lines += _lineage(session, facts.batch_id, body)
    (folder / CARD).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"name": CARD, "format": "markdown"}


def _agreement(session: Session, batch_id: int) -> tuple[dict[str, float | None], float | None]:
    thresholds = session.scalar(
        select(GateRun.thresholds)
        .where(GateRun.batch_id == batch_id, GateRun.gate == "agreement")
        .order_by(GateRun.id.desc())
        .limit(1)
    )
    mean = session.scalar(
        select(func.avg(ItemResult.agreement))
        .join(Item, Item.id == ItemResult.item_id)
        .where(Item.batch_id == batch_id, Item.status.in_(DELIVERABLE), Item.is_gold.is_(False))
    )
    alphas = (thresholds or {}).get("alpha") or {}
    return dict(alphas), None if mean is None else float(mean)


def _lineage(session: Session, batch_id: int, body: ProjectBody) -> list[str]:
    batch = session.get_one(Batch, batch_id)
    project = session.get_one(Project, batch.project_id)
    experts = session.scalar(
        select(func.count(func.distinct(Assignment.expert_id)))
        .join(Item, Item.id == Assignment.item_id)
        .where(Item.batch_id == batch_id, Assignment.status == "accepted")
    )
    by_role = dict(
        session.execute(
            select(Assignment.role, func.count())
            .join(Item, Item.id == Assignment.item_id)
            .where(Item.batch_id == batch_id, Assignment.status == "accepted")
            .group_by(Assignment.role)
        ).all()
    )
    gates = session.execute(
        select(GateRun.gate, GateRun.success, func.count())
        .where(GateRun.batch_id == batch_id)
        .group_by(GateRun.gate, GateRun.success)
        .order_by(GateRun.gate)
    ).all()
    lines = [
        # Not the batch's source: a URL may carry a token.
        f"- Client project `{project.slug}`; batch {batch_id} ({batch.source_format}), "
        f"spec version {batch.spec_version}.",
        f"- {experts or 0} experts (pseudonymous in the records); accepted work by role: "
        + ", ".join(f"{role} {n}" for role, n in sorted(by_role.items())),
        "- Gate runs: " + ", ".join(f"{gate} {'passed' if ok else 'failed'} x{n}" for gate, ok, n in gates),
    ]
    if body.generation is not None:
        made = generation_counts(session, batch_id)
        for endpoint in body.generation.endpoints:
            ok, failed = made.get((endpoint.name, "ok"), 0), made.get((endpoint.name, "failed"), 0)
            parameters = endpoint.parameters.model_dump(mode="json", exclude_none=True)
            lines.append(
                f"- Model endpoint `{endpoint.name}`: model `{_cell(endpoint.model)}`, parameters {parameters}; "
                f"{ok} answers, {failed} failed"
            )
    return lines


def _brief(value: Any) -> str:
    """A list of named things (a rubric's criteria) by name and weight; anything else as it is."""
    if isinstance(value, list) and value and all(isinstance(v, dict) and "name" in v for v in value):
        return ", ".join(f"{v['name']} (weight {v.get('weight', 1)})" for v in value)
    return str(value)


def _num(value: float | None) -> str:
    return "not measurable" if value is None else f"{value:.3f}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:300]
