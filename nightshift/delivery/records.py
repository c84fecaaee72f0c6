"""A batch's delivered records: which items, their answers as stored, and their lineage."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import ColumnElement, Text, cast, func, select
from sqlalchemy.orm import Session

from nightshift.platform import pseudonyms
from nightshift.platform.models import (
    Assignment,
    Batch,
    GateRun,
    Item,
    ItemResult,
    ModelResponse,
    Project,
    Review,
    as_utc,
)

if TYPE_CHECKING:
    import pyarrow as pa


# Items a delivery carries: passed, or delivered before (a redelivery); never gold.
DELIVERABLE = ("passed", "delivered")
RECORD_FIELDS = ["item_id", "external_id", "input_hash", "answer", "method", "agreement", "lineage"]


# pyarrow and numpy, heavy to load, are imported by the build that writes Parquet, not by every process
# that imports this module (ingest has no use for them).
@cache
def parquet_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("item_id", pa.int64()),
            ("external_id", pa.string()),
            ("input_hash", pa.string()),
            # Answers and lineage differ per project: kept as JSON text, which every engine can read.
            ("answer", pa.string()),
            ("method", pa.string()),
            ("agreement", pa.float64()),
            ("lineage", pa.string()),
            ("change", pa.string()),
        ]
    )


def pseudonym(client_id: int, expert_id: int) -> str:
    """A stable per-client alias: clients can tell experts apart but never who they are (keyed)."""
    return pseudonyms.for_client(client_id, expert_id)


def _deliverable(batch_id: int) -> tuple[ColumnElement[bool], ...]:
    return Item.batch_id == batch_id, Item.status.in_(DELIVERABLE), Item.is_gold.is_(False)


def passed_item_ids(session: Session, batch_id: int) -> list[int]:
    return list(session.scalars(select(Item.id).where(*_deliverable(batch_id)).order_by(Item.id)))


@dataclass(frozen=True)
class Record:
    """One delivered record, with the stored JSON of its answer kept as text: it is written out as
    it was stored, never parsed and dumped again (at 100,000 records that is most of the cost)."""

    item_id: int
    external_id: str
    input_hash: str
    answer_json: str | None
    method_json: str
    agreement: float
    lineage_json: str

    def as_dict(self, change: str | None = None) -> dict[str, Any]:
        record: dict[str, Any] = {
            "item_id": self.item_id,
            "external_id": self.external_id,
            "input_hash": self.input_hash,
            "answer": orjson.Fragment(self.answer_json or "null"),
            "method": orjson.Fragment(self.method_json),
            "agreement": self.agreement,
            "lineage": orjson.Fragment(self.lineage_json),
        }
        if change is not None:
            record["change"] = change
        return record

    @property
    def has_answer(self) -> bool:
        return self.answer_json not in (None, "null")

    def outcome_hash(self) -> str:
        return outcome_hash(orjson.loads(self.answer_json or "null"), orjson.loads(self.method_json), self.agreement)


def _lineage_context(session: Session, batch_id: int) -> tuple[Batch, int, list[int]]:
    """What every record's lineage shares: the batch, its client (for pseudonyms), its gate runs."""
    batch = session.get_one(Batch, batch_id)
    client_id = session.get_one(Project, batch.project_id).client_id
    gate_runs = list(session.scalars(select(GateRun.id).where(GateRun.batch_id == batch_id).order_by(GateRun.id)))
    return batch, client_id, gate_runs


def iter_records(session: Session, batch_id: int, chunk_rows: int = 5000) -> Iterator[list[Record]]:
    """The batch's deliverable records in item order, a chunk at a time."""
    if session.get_bind().dialect.name == "postgresql":
        return iter_records_in_sql(session, batch_id, chunk_rows)
    return iter_records_in_python(session, batch_id, chunk_rows)


# Lineage put together by PostgreSQL, on the other core, while this process writes the previous
# chunk: building it here from three assignment rows per item was most of a delivery's build time.
# The text is the same, byte for byte, as iter_records_in_python's (a test holds them equal): every
# piece is either JSON already (jsonb as text), hex, a number, or a role or status the table's
# check constraints limit to plain words, so concatenation needs no escaping. Pseudonyms come from
# pseudonym() here, passed in as arrays: one definition of an alias, computed once per expert.
LINEAGE_SQL = """
WITH chunk AS MATERIALIZED (
    SELECT i.id, i.external_id, i.content_hash FROM items i
    WHERE i.batch_id = %(batch_id)s AND i.status = ANY(%(statuses)s) AND NOT i.is_gold AND i.id > %(after)s
    ORDER BY i.id
    LIMIT %(limit)s
), alias AS (
    SELECT * FROM unnest(%(expert_ids)s::bigint[], %(aliases)s::text[]) AS a (expert_id, alias)
), lineage AS (
    SELECT s.item_id,
           string_agg('{"expert":"' || a.alias || '","role":"' || s.role || '","decision":"' || s.status || '"}',
                      ',' ORDER BY s.id) AS decisions,
           string_agg('"' || a.alias || '"', ',' ORDER BY s.id)
               FILTER (WHERE s.role = 'annotate' AND s.status = 'accepted') AS experts
    FROM assignments s JOIN alias a ON a.expert_id = s.expert_id
    WHERE s.item_id BETWEEN (SELECT min(id) FROM chunk) AND (SELECT max(id) FROM chunk)
      AND s.status IN ('accepted', 'rejected')
    GROUP BY s.item_id
), reviewed AS (
    SELECT ra.item_id,
           string_agg('{"reviewer":"' || a.alias || '","decision":"' || v.decision || '","submission":'
                      || v.submission_id || ',"at":"'
                      || to_char(v.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || '"}',
                      ',' ORDER BY v.id) AS reviews
    FROM reviews v
    JOIN assignments ra ON ra.id = v.reviewer_assignment_id
    JOIN alias a ON a.expert_id = ra.expert_id
    WHERE ra.item_id BETWEEN (SELECT min(id) FROM chunk) AND (SELECT max(id) FROM chunk)
    GROUP BY ra.item_id
), answered AS (
    SELECT m.item_id,
           string_agg('{"endpoint":"' || m.endpoint || '","response":' || m.id || '}',
                      ',' ORDER BY m.endpoint COLLATE "C") AS responses
    FROM (
        SELECT item_id, endpoint, max(id) AS id FROM model_responses
        WHERE item_id BETWEEN (SELECT min(id) FROM chunk) AND (SELECT max(id) FROM chunk) AND status = 'ok'
        GROUP BY item_id, endpoint
    ) m
    GROUP BY m.item_id
)
SELECT c.id, c.external_id, c.content_hash, r.answer::text, r.method::text, r.agreement,
       '{"input_hash":"' || c.content_hash || '","experts":[' || coalesce(l.experts, '') || '],"decisions":['
       || coalesce(l.decisions, '') || '],"reviews":[' || coalesce(w.reviews, '') || '],"responses":['
       || coalesce(m.responses, '') || '],"submissions":' || coalesce(r.submission_ids::text, '[]')
       || ',"gate_runs":' || %(gate_runs)s || ',"spec_version":' || %(spec_version)s::integer || '}'
FROM chunk c
JOIN item_results r ON r.item_id = c.id
LEFT JOIN lineage l ON l.item_id = c.id
LEFT JOIN reviewed w ON w.item_id = c.id
LEFT JOIN answered m ON m.item_id = c.id
ORDER BY c.id
"""


def iter_records_in_sql(session: Session, batch_id: int, chunk_rows: int = 5000) -> Iterator[list[Record]]:
    """PostgreSQL: records with their lineage made by the server, read through the driver's cursor."""
    batch, client_id, gate_runs = _lineage_context(session, batch_id)
    expert_ids = list(
        session.scalars(
            select(Assignment.expert_id)
            .distinct()
            .join(Item, Item.id == Assignment.item_id)
            .where(
                Item.batch_id == batch_id,
                Assignment.status.in_(("accepted", "rejected")) | (Assignment.role == "review"),
            )
        )
    )
    params: dict[str, Any] = {
        "batch_id": batch_id,
        "statuses": list(DELIVERABLE),
        "expert_ids": expert_ids,
        "aliases": [pseudonym(client_id, expert_id) for expert_id in expert_ids],
        "gate_runs": orjson.dumps(gate_runs).decode(),
        "spec_version": batch.spec_version,
        "limit": chunk_rows,
        "after": 0,
    }
    connection = session.connection()
    # JIT compiling costs more than it saves on a chunk this size.
    connection.exec_driver_sql("SET LOCAL jit = off")
    # The driver's cursor: SQLAlchemy's row processing would cost as much as the query.
    cursor = connection.connection.cursor()
    try:
        while True:
            # The planner takes the experts' aliases (unnest) for ten rows and, once the pool is big,
            # joins them by a loop over the whole pool, each an index scan of that expert's
            # assignments: every chunk then read the assignments table (seconds per chunk at a
            # million items, growing with the batch). A hash of the aliases against the chunk's
            # assignments is the plan; nested loops are off for this statement only.
            cursor.execute("SET LOCAL enable_nestloop = off")
            cursor.execute(LINEAGE_SQL, params)
            rows = cursor.fetchall()
            cursor.execute("RESET enable_nestloop")
            if not rows:
                return
            params["after"] = rows[-1][0]
            yield [Record(*row) for row in rows]
    finally:
        cursor.close()


def iter_records_in_python(session: Session, batch_id: int, chunk_rows: int = 5000) -> Iterator[list[Record]]:
    """Any database: items and results in one query, lineage put together here from the assignments."""
    batch, client_id, gate_runs = _lineage_context(session, batch_id)
    shared: dict[tuple[int, str, str], dict[str, str]] = {}
    last = 0
    # Core rows straight off the connection: ORM row loading costs more than the query itself here.
    connection = session.connection()
    while True:
        rows = connection.execute(
            select(
                Item.id,
                Item.external_id,
                Item.content_hash,
                cast(ItemResult.answer, Text),
                cast(ItemResult.method, Text),
                ItemResult.agreement,
                cast(ItemResult.submission_ids, Text),
            )
            .join(ItemResult, ItemResult.item_id == Item.id)
            .where(*_deliverable(batch_id), Item.id > last)
            .order_by(Item.id)
            .limit(chunk_rows)
        ).all()
        if not rows:
            return
        first, last = rows[0][0], rows[-1][0]
        decisions: dict[int, list[dict[str, str]]] = {}
        annotators: dict[int, list[str]] = {}
        for item_id, expert_id, role, status in connection.execute(
            select(Assignment.item_id, Assignment.expert_id, Assignment.role, Assignment.status)
            .join(Item, Item.id == Assignment.item_id)
            .where(
                Item.batch_id == batch_id,
                Assignment.item_id.between(first, last),
                Assignment.status.in_(("accepted", "rejected")),
            )
            .order_by(Assignment.id)
        ).all():
            # One dict per (expert, role, decision), shared by every record it appears in.
            decision = shared.get((expert_id, role, status))
            if decision is None:
                alias = pseudonym(client_id, expert_id)
                decision = shared[(expert_id, role, status)] = {"expert": alias, "role": role, "decision": status}
            decisions.setdefault(item_id, []).append(decision)
            if role == "annotate" and status == "accepted":
                annotators.setdefault(item_id, []).append(decision["expert"])
        reviews = _reviews(connection, client_id, first, last)
        responses = _responses(connection, first, last)
        yield [
            Record(
                item_id,
                external_id,
                content_hash,
                answer,
                method,
                agreement,
                orjson.dumps(
                    {
                        "input_hash": content_hash,
                        "experts": annotators.get(item_id, []),
                        "decisions": decisions.get(item_id, []),
                        "reviews": reviews.get(item_id, []),
                        "responses": responses.get(item_id, []),
                        "submissions": orjson.Fragment(submissions or "[]"),
                        "gate_runs": gate_runs,
                        "spec_version": batch.spec_version,
                    }
                ).decode(),
            )
            for item_id, external_id, content_hash, answer, method, agreement, submissions in rows
        ]


def _reviews(connection: Any, client_id: int, first: int, last: int) -> dict[int, list[dict[str, Any]]]:
    """Reviewers' decisions on the items of [first, last]: who (by alias), what, on which
    annotation, when (UTC, to the second)."""
    out: dict[int, list[dict[str, Any]]] = {}
    for item_id, expert_id, decision, submission_id, at in connection.execute(
        select(Assignment.item_id, Assignment.expert_id, Review.decision, Review.submission_id, Review.created_at)
        .join(Assignment, Assignment.id == Review.reviewer_assignment_id)
        .where(Assignment.item_id.between(first, last))
        .order_by(Review.id)
    ).all():
        out.setdefault(item_id, []).append(
            {
                "reviewer": pseudonym(client_id, expert_id),
                "decision": decision,
                "submission": submission_id,
                "at": as_utc(at).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
    return out


def _responses(connection: Any, first: int, last: int) -> dict[int, list[dict[str, Any]]]:
    """The model answers the items of [first, last] were judged with: each endpoint's latest."""
    out: dict[int, list[dict[str, Any]]] = {}
    for item_id, endpoint, response_id in connection.execute(
        select(ModelResponse.item_id, ModelResponse.endpoint, func.max(ModelResponse.id))
        .where(ModelResponse.item_id.between(first, last), ModelResponse.status == "ok")
        .group_by(ModelResponse.item_id, ModelResponse.endpoint)
    ).all():
        out.setdefault(item_id, []).append({"endpoint": endpoint, "response": response_id})
    for found in out.values():
        found.sort(key=lambda r: r["endpoint"])
    return out


def outcome_hash(answer: Any, method: Any, agreement: float) -> str:
    """What a client cares about changing: the answer, how it was reached, and the agreement."""
    return hashlib.sha1(orjson.dumps([answer, method, agreement], option=orjson.OPT_SORT_KEYS)).hexdigest()
