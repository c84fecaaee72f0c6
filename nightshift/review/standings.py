"""The project's models ranked against each other over a whole batch: Bradley-Terry over every
pair that every accepted ranking of the batch orders (each response's letter is its endpoint's, the
same for every item), with 95% intervals. What a client reads to pick a model."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightshift.fields import field_type
from nightshift.fields.bradley_terry import fit, ranking_comparisons
from nightshift.generate.responses import response_label
from nightshift.platform.models import Assignment, Item, Submission
from nightshift.projects.spec import ProjectBody, Ranking


@dataclass(frozen=True)
class Standing:
    label: str
    endpoint: str
    model: str
    score: float
    low: float
    high: float
    first: int  # rankings that put it first


def model_standings(session: Session, batch_id: int, body: ProjectBody) -> dict[str, list[Standing]]:
    """For each ranking label over the responses: the endpoints, strongest first."""
    if body.generation is None:
        return {}
    endpoints = sorted(body.generation.endpoints, key=lambda e: e.name)
    letters = [response_label(k) for k in range(len(endpoints))]
    labels = [lab for lab in body.labels if isinstance(lab, Ranking) and lab.options == letters]
    if not labels:
        return {}
    answers = session.scalars(
        select(Submission.answer)
        .join(Assignment, Assignment.id == Submission.assignment_id)
        .join(Item, Item.id == Assignment.item_id)
        .where(
            Item.batch_id == batch_id,
            Item.is_gold.is_(False),
            Assignment.role == "annotate",
            Assignment.status == "accepted",
        )
    )
    comparisons: dict[str, list[tuple[int, int, float]]] = {lab.name: [] for lab in labels}
    firsts: dict[str, list[int]] = {lab.name: [0] * len(letters) for lab in labels}
    for answer in answers:
        for label in labels:
            value = answer.get(label.name)
            if value is None or field_type(label).answer_error(label, value):
                continue
            order = [letters.index(o) for o in value]
            comparisons[label.name] += ranking_comparisons(order, 1.0)
            firsts[label.name][order[0]] += 1
    out: dict[str, list[Standing]] = {}
    for label in labels:
        strengths = fit(len(letters), comparisons[label.name])
        out[label.name] = [
            Standing(
                letters[k],
                endpoints[k].name,
                endpoints[k].model,
                round(strengths.scores[k], 4),
                round(strengths.low[k], 4),
                round(strengths.high[k], 4),
                firsts[label.name][k],
            )
            for k in strengths.order()
        ]
    return out
