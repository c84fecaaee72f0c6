"""Review at scale: gate and aggregate 300,000 submissions (100,000 items x 3) on PostgreSQL.

    uv run python bench/review.py                        # 100,000 items x 3, 3 runs
    uv run python bench/review.py --items 5000 --repeat 1

Set-up (not timed): a batch whose items have a known true answer, three submitted annotations
each from a pool of 1,000 experts of whom 20% are careless (they answer at random), 5% gold items;
loaded with COPY. Timed per run, one round as the review flow runs it (bench/review_round.py, the
tasks' core calls): the round cut into parts of the service's size (300,000 submissions: 6 parts
of ~50,000), each part read, gated by the submissions gate (Great Expectations, with Data Docs),
its verdicts and signals written, its complete items aggregated (Dawid-Skene) and their agreement
gated; then the batch's experts judged once by the quality gate (careless experts paused, what
their votes decided sent back), reliability, the batch's status and the quality table. The
collector is paused within each part, as the flow pauses it. Baseline in the same run: reading
the same 300,000 rows (submission, item, expert, time, answer) out of PostgreSQL into Python.

Also printed: the accuracy against the known truth of the single-choice field over every item,
aggregated from all three answers (careless ones included) by majority vote and by Dawid-Skene,
and the accuracy of what the gates let pass.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import psycopg  # noqa: E402
import yaml  # noqa: E402

from bench.databases import drop_database, fresh_database  # noqa: E402

EXPERTS = 1000
CARELESS_SHARE = 0.2
GOOD_ACCURACY = 0.93  # per field; gold judges all fields at once (0.93^3 ~ 0.8)
GOLD_SHARE = 0.05
VERDICTS = ["approve", "revise", "reject", "escalate", "unclear"]


def spec() -> dict:
    data = yaml.safe_load((ROOT / "samples" / "spec.yaml").read_text())
    data["project"]["labels"].insert(1, {"name": "verdict", "type": "single_choice", "options": VERDICTS})
    data["project"]["overlap"] = {"min": 3, "max": 3}
    return data


def truth(item: int) -> dict:
    rng = random.Random(item)
    return {
        "rating": rng.randint(1, 7),
        "verdict": rng.choice(VERDICTS),
        "error_tags": sorted(rng.sample(["context_misread", "reasoning_flaw", "factual_error"], rng.randint(0, 2))),
    }


def careless(expert: int) -> bool:
    return expert % 5 == 0  # 20% of the pool


def answer_of(item: int, expert: int, submission: int) -> dict:
    rng = random.Random(submission)
    true = truth(item)
    right = (lambda: rng.random() < GOOD_ACCURACY) if not careless(expert) else (lambda: False)
    return {
        "rating": true["rating"] if right() else rng.randint(1, 7),
        "verdict": true["verdict"] if right() else rng.choice(VERDICTS),
        "error_tags": true["error_tags"] if right() else sorted(rng.sample(["unsafe", "factual_error"], 1)),
        "rationale": f"Submission {submission}: the answer misreads the covenant terms of the scenario.",
        "improved_prompt": f"Submission {submission}: state the covenant terms and ask for the liquidity effect "
        "over the next four quarters, with the assumptions listed.",
    }


def build(plain: str, items: int) -> None:
    rng = random.Random(42)
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO experts (handle, name, email, timezone, work_start_hour, work_hours, hourly_rate, tier,"
            " capacity, reliability, status) SELECT 'x' || g, 'Expert ' || g, 'x' || g || '@experts.example',"
            " 'UTC', 18, 3, 150, 'annotator', 1000, 0.7, 'active' FROM generate_series(1, %s) g",
            (EXPERTS,),
        )
        with connection.cursor() as cursor:
            with cursor.copy(
                "COPY items (id, project_id, batch_id, external_id, content_hash, language, payload, is_gold, status)"
                " FROM STDIN"
            ) as copy:
                for i in range(1, items + 1):
                    payload = json.dumps({"prompt": f"Scenario {i}: a family office reviews concentration risk."})
                    gold = i % int(1 / GOLD_SHARE) == 0
                    copy.write_row((i, 1, 1, f"item-{i}", f"{i:064x}", "en", payload, gold, "assigned"))
            with cursor.copy("COPY gold_answers (item_id, answer) FROM STDIN") as copy:
                for i in range(int(1 / GOLD_SHARE), items + 1, int(1 / GOLD_SHARE)):
                    copy.write_row((i, json.dumps(truth(i))))
            with cursor.copy(
                "COPY assignments (id, item_id, expert_id, role, status, due_at, started_at, submitted_at,"
                " worked_seconds) FROM STDIN"
            ) as copy:
                expert_of: dict[int, int] = {}
                for i in range(1, items + 1):
                    first, step = rng.randrange(EXPERTS), 1 + rng.randrange(EXPERTS // 3 - 1)
                    for k in range(3):
                        expert = expert_of[i * 3 + k] = 1 + (first + k * step) % EXPERTS
                        copy.write_row(
                            (i * 3 + k, i, expert, "annotate", "submitted", "2026-11-25", "2026-11-24 10:00",
                             "2026-11-24 10:20", 1200)
                        )  # fmt: skip
            with cursor.copy("COPY submissions (id, assignment_id, answer, time_on_task_seconds) FROM STDIN") as copy:
                for i in range(1, items + 1):
                    for k in range(3):
                        sid = i * 3 + k
                        copy.write_row((sid, sid, json.dumps(answer_of(i, expert_of[sid], sid)), 1200))
        for table in ("items", "assignments", "submissions"):
            connection.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        connection.execute("VACUUM ANALYZE")


def reset(plain: str) -> None:
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute("TRUNCATE item_results, gate_runs, audit_log")
        connection.execute("DELETE FROM assignments WHERE role <> 'annotate'")
        connection.execute("UPDATE assignments SET status = 'submitted', status_reason = NULL")
        connection.execute("UPDATE items SET status = 'assigned', status_reason = NULL, overlap_target = NULL")
        connection.execute("UPDATE experts SET status = 'active', reliability = 0.7")
        connection.execute("UPDATE batches SET status = 'dispatched'")
        connection.execute("VACUUM ANALYZE")
        # The reset's writes flushed now, not by the checkpointer in the middle of the timed run.
        connection.execute("CHECKPOINT")


def bare_read(plain: str) -> float:
    from nightshift.platform.db import POSTGRES_OPTIONS

    started = time.perf_counter()
    # With the service's session settings (no JIT), so the baseline is read as fast as the review reads.
    with psycopg.connect(plain, options=POSTGRES_OPTIONS) as connection:
        rows = connection.execute(
            "SELECT s.id, a.item_id, a.expert_id, s.time_on_task_seconds, s.answer FROM submissions s"
            " JOIN assignments a ON a.id = s.assignment_id JOIN items i ON i.id = a.item_id"
            " WHERE i.batch_id = 1 AND a.role = 'annotate'"
        ).fetchall()
    assert rows
    return time.perf_counter() - started


def one_run(sessions, docs: Path, part_submissions: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from bench.review_round import review_round

    times: dict[str, float] = {}
    started = time.perf_counter()
    submissions, report = review_round(sessions, 1, docs, times, part_submissions)
    times["total"] = time.perf_counter() - started
    times["rejected"] = submissions.failed
    times["paused"] = report.paused_experts
    times["passed"] = report.passed_items
    times["adjudication"] = report.adjudication_items
    return times


def accuracy(sessions, items: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from nightshift.platform.models import Assignment, Item, ItemResult, Submission
    from nightshift.projects.registry import project_spec
    from nightshift.projects.spec import ProjectBody
    from nightshift.review.aggregate import Vote, aggregate_items

    with sessions() as session:
        project = project_spec(session, 1).project
        votes: dict[int, list[Vote]] = {}
        for item_id, sid, expert_id, answer in session.execute(
            select(Assignment.item_id, Submission.id, Assignment.expert_id, Submission.answer)
            .join(Submission, Submission.assignment_id == Assignment.id)
            .where(Assignment.role == "annotate")
        ):
            votes.setdefault(item_id, []).append(Vote(sid, expert_id, 0.7, answer))
        passed = dict(
            session.execute(
                select(ItemResult.item_id, ItemResult.answer)
                .join(Item, Item.id == ItemResult.item_id)
                .where(Item.is_gold.is_(False))
            ).all()
        )
    found = {}
    for method in ("majority_vote", "dawid_skene"):
        body = project.model_dump()
        body["labels"] = [
            {**label, "aggregation": method} if label["name"] == "verdict" else label for label in body["labels"]
        ]
        results = aggregate_items(votes, ProjectBody.model_validate(body))
        found[method] = sum(r.answer["verdict"] == truth(i)["verdict"] for i, r in results.items()) / len(results)
    found["passed by the gates (Dawid-Skene)"] = (
        sum(a["verdict"] == truth(i)["verdict"] for i, a in passed.items()) / len(passed) if passed else 0.0
    )
    found["passed items"] = len(passed)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--part-submissions",
        type=int,
        default=None,
        help="the round's part size (default: the service's, NIGHTSHIFT_REVIEW_PART_SUBMISSIONS)",
    )
    args = parser.parse_args()
    if args.part_submissions is None:
        from bench.review_round import PART_SUBMISSIONS

        args.part_submissions = PART_SUBMISSIONS
    workdir = Path(tempfile.mkdtemp(prefix="nightshift-bench-review-"))
    url = fresh_database("postgresql", workdir, 0)
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    try:
        from nightshift.platform.db import make_engine, make_sessionmaker, transaction
        from nightshift.platform.migrate import upgrade
        from nightshift.platform.models import Batch
        from nightshift.projects.registry import apply_spec
        from nightshift.projects.spec import parse_spec

        upgrade(url)
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        with transaction(sessions) as session:
            apply_spec(session, parse_spec(spec()))
            session.add(
                Batch(project_id=1, source="bench", source_checksum="bench", status="dispatched", spec_version=1)
            )
        started = time.perf_counter()
        build(plain, args.items)
        print(f"set-up: {args.items * 3:,} submissions loaded in {time.perf_counter() - started:.1f} s (not timed)")
        runs, reads = [], []
        for _ in range(args.repeat):
            reset(plain)
            reads.append(bare_read(plain))
            # One Data Docs site for every run, as the service keeps one (settings.data_docs_dir).
            runs.append(one_run(sessions, workdir / "docs", args.part_submissions))
        quality = accuracy(sessions, args.items)
        engine.dispose()
    finally:
        drop_database(url)

    def median(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    submissions = args.items * 3
    print(f"submissions {submissions:,} ({args.items:,} items x 3), {EXPERTS:,} experts, {CARELESS_SHARE:.0%} careless")
    print(f"runs {args.repeat}; medians (s)")
    print(f"parts of about {args.part_submissions:,} submissions, as the review flow cuts a round")
    stages = ("parts", "read", "submissions gate", "verdicts", "aggregation", "experts")
    for key in stages:
        print(f"  {key:<28} {median(key):8.3f}")
    print(
        f"review (gates + aggregation)        {median('total'):8.3f} s"
        f"   {submissions / median('total'):>10,.0f} submissions/s"
    )
    print(f"baseline: bare read of the rows     {statistics.median(reads):8.3f} s")
    print(f"ratio review / bare read            {median('total') / statistics.median(reads):8.2f} (target <= 2)")
    print(
        f"outcome: {median('rejected'):,.0f} rejected by the submissions gate, {median('paused'):,.0f} experts paused"
        f" by gold, {median('passed'):,.0f} items passed, {median('adjudication'):,.0f} to adjudication"
    )
    print("accuracy of the single-choice field against the truth (all items, careless answers included):")
    print(f"  majority vote                     {quality['majority_vote']:8.3f}")
    print(f"  Dawid-Skene                       {quality['dawid_skene']:8.3f}")
    print(
        f"  passed by the gates (Dawid-Skene) {quality['passed by the gates (Dawid-Skene)']:8.3f}"
        f" over {quality['passed items']:,.0f} items"
    )


if __name__ == "__main__":
    main()
