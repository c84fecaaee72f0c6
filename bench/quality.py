"""Quality per dollar: the same simulated answers for every method, on PostgreSQL.

    uv run python bench/quality.py                                   # 4000 items, 600 experts, 3 seeds
    uv run python bench/quality.py --items 1000 --experts 150 --seeds 1 --json out.json

A pool with known truth: each expert is good (right with a probability drawn from 0.80-0.97),
careless (random answers at normal speed) or a spammer (always the same answer); --leaners and
--copiers add experts with other bad habits (a favourite option half the time; copying a careless
partner). --copy-pasters and --near-duplicators add cheaters on written words: the project then
asks for a rationale too, honest experts write their own, a copy-paster pastes the item's scenario
(answering at random), a near-duplicator lightly edits another expert's rationale on the same
item; Nightshift's signals (work.signals) are recorded each round and the bench reports the share
of each kind's submissions flagged as risky and of its experts paused. An answer is a pure function
of (seed, item, expert), so every method sees the same answers.

`nightshift` runs the project's own core round after round on a fresh PostgreSQL database: dispatch,
answers written in bulk, then one review round as the review flow runs it (bench/review_round.py:
the submissions gate, aggregation and the agreement gate part by part, then the quality gate with
its pauses, reliability), adjudication
by the pool's adjudicators, until the batch passes or stops moving (stuck). The baselines are
computed from the same answers, each item's experts drawn in one seeded order: majority vote at a
fixed 3 (`mv3`), Dawid-Skene at a fixed 3 (`ds3`), two then a third on disagreement with
Dawid-Skene (`ds_2to3`), crowd-kit's OneCoinDawidSkene at a fixed 3 (`onecoin3`, when crowd-kit
is installed), and majority vote over good experts only (`oracle`). `nightshift_oracle_pause` is
Nightshift with every bad expert also paused at the first review after their first answers (the
pool's kinds known): no quality model can pause sooner, so its cost is the floor of this pool.

Pay: every answered assignment is paid its expert's hourly rate for MINUTES minutes, times the
spec's rate for its role. Accuracy: share of delivered (non-gold) items whose final answer is the truth.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from bench.batches import load_batch  # noqa: E402
from bench.databases import drop_database, fresh_database  # noqa: E402

OPTIONS = ["sound", "misread_context", "flawed_reasoning", "unsafe"]
CHEATERS = ("copy_paster", "near_duplicator")
VOCABULARY = [
    f"{stem}{n}" for stem in ("risk", "cash", "debt", "rate", "plan", "cost", "loan", "term") for n in range(250)
]
MINUTES = 10.0
MAX_ROUNDS = 25
NOW = dt.datetime(2026, 12, 1, 20, 0, tzinfo=dt.UTC)
KEYS = (
    "accuracy",
    "assignments_per_item",
    "pay_per_item",
    "correct_per_1000_usd",
    "good_paused_share",
    "careless_paused_share",
    "median_answers_to_pause",
    "stuck_batches",
)


@dataclass(frozen=True)
class Expert:
    index: int
    kind: str  # good, careless, spammer, leaner, copier, copy_paster, near_duplicator
    accuracy: float
    rate: float
    adjudicator: bool
    partner: int | None = None


@dataclass
class Pool:
    seed: int
    experts: list[Expert]
    truth: list[str]
    gold: set[int] = field(default_factory=set)

    def answer(self, item: int, expert: int) -> str:
        who = self.experts[expert]
        if who.kind == "spammer":
            return OPTIONS[who.index % len(OPTIONS)]
        rng = random.Random(_seed(self.seed, item, expert))
        if who.kind in ("careless", "copy_paster"):
            return rng.choice(OPTIONS)
        if who.kind == "leaner" and rng.random() < 0.5:
            # Half the time their favourite option, whatever the item says.
            return OPTIONS[who.index % len(OPTIONS)]
        if who.kind == "copier" and who.partner is not None:
            # Copies one fixed partner (a careless one: copying only spreads what the partner gets wrong).
            return self.answer(item, who.partner)
        if rng.random() < who.accuracy:
            return self.truth[item]
        return rng.choice([o for o in OPTIONS if o != self.truth[item]])

    @property
    def writes(self) -> bool:
        """Whether the project asks for a rationale: only with cheaters on words in the pool."""
        return any(e.kind in CHEATERS for e in self.experts)

    def scenario(self, item: int) -> str:
        rng = random.Random(_seed(self.seed, "scenario", item))
        return f"Scenario {item}: " + " ".join(rng.choice(VOCABULARY) for _ in range(30))

    def rationale(self, item: int, expert: int, others: list[tuple[int, str]]) -> str:
        """What the expert writes on the item; others: (expert, text) already written on it."""
        who = self.experts[expert]
        rng = random.Random(_seed(self.seed, "text", item, expert))
        if who.kind == "copy_paster":
            return self.scenario(item)
        if who.kind == "near_duplicator":
            source = next((text for e, text in others if e != expert), None)
            if source is not None:
                words = source.split()
                words[rng.randrange(len(words))] = rng.choice(VOCABULARY)
                return " ".join(words) + " " + rng.choice(VOCABULARY)
        return " ".join(rng.choice(VOCABULARY) for _ in range(30))

    def order(self, item: int) -> list[int]:
        """The item's experts in the order a fixed-overlap baseline takes them (annotators only)."""
        annotators = [e.index for e in self.experts if not e.adjudicator]
        random.Random(_seed(self.seed, "order", item)).shuffle(annotators)
        return annotators


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


def make_pool(
    seed: int,
    items: int,
    experts: int,
    careless: float,
    spammers: float,
    leaners: float = 0.0,
    copiers: float = 0.0,
    copy_pasters: float = 0.0,
    near_duplicators: float = 0.0,
) -> Pool:
    rng = random.Random(seed)
    kinds = ["careless"] * round(experts * careless) + ["spammer"] * round(experts * spammers)
    kinds += ["leaner"] * round(experts * leaners) + ["copier"] * round(experts * copiers)
    kinds += ["copy_paster"] * round(experts * copy_pasters) + ["near_duplicator"] * round(experts * near_duplicators)
    kinds += ["good"] * (experts - len(kinds))
    rng.shuffle(kinds)
    careless_ones = [n for n, kind in enumerate(kinds) if kind == "careless"] or [0]
    pool = []
    for n, kind in enumerate(kinds):
        # One in ten is an adjudicator, and only a good one (they are vetted more).
        adjudicator = n % 10 == 0 and kind == "good"
        partner = careless_ones[n % len(careless_ones)] if kind == "copier" else None
        pool.append(Expert(n, kind, rng.uniform(0.80, 0.97), float(rng.randint(100, 250)), adjudicator, partner))
    truth = [rng.choice(OPTIONS) for _ in range(items)]
    gold = {i for i in range(items) if i % 20 == 7}
    return Pool(seed, pool, truth, gold)


def _spec(writes: bool = False) -> dict[str, Any]:
    spec = {
        "client": {"slug": "bench", "name": "Bench"},
        "project": {
            "slug": "quality",
            "name": "Quality per dollar",
            "instructions": "Say whether the model's answer is sound, and if not, what went wrong.",
            "input_fields": [{"name": "prompt", "type": "text"}, {"name": "language", "type": "text"}],
            "labels": [{"name": "verdict", "type": "single_choice", "options": OPTIONS}],
            "required_skills": ["finance"],
            "languages": ["en"],
            "review": False,
            "gold_rate": 0.05,
            "expected_minutes_per_item": MINUTES,
            "gates": {"min_time_on_task_seconds": 0, "reading_chars_per_second": None},
        },
    }
    if writes:
        project: dict[str, Any] = spec["project"]
        project["labels"].append({"name": "rationale", "type": "free_text", "min_length": 40})
        project["gates"]["near_duplicate_similarity"] = 0.7
    return spec


def run_nightshift(pool: Pool, workdir: Path, capacity: int = 10, oracle_pause: bool = False) -> dict[str, Any]:
    """capacity: the open tasks each expert takes in a round (a night's work at ~20 minutes a task).
    oracle_pause: besides the quality gate, every bad expert is paused at the first review after
    their first answers, as if the pool's kinds were known: the floor of what pausing can save."""
    from sqlalchemy import func, select

    from bench.review_round import review_round
    from nightshift.dispatch.assignments import dispatch_batch
    from nightshift.experts.registry import ExpertRow
    from nightshift.platform.db import make_engine, make_sessionmaker, transaction
    from nightshift.platform.migrate import upgrade
    from nightshift.platform.models import Assignment, Batch, Item, ItemResult, Submission, SubmissionSignal
    from nightshift.platform.models import Expert as ExpertModel
    from nightshift.projects.registry import project_spec
    from nightshift.projects.spec import parse_spec
    from nightshift.review import gold, settle
    from nightshift.review.decisions import claim_adjudication
    from nightshift.work.answers import submit_answer
    from nightshift.work.signals import RISK_FLAG
    from nightshift.work.submissions import NewSubmission, record_submissions, start_assignments

    url = fresh_database("postgresql", workdir, pool.seed)
    engine = make_engine(url)
    try:
        upgrade(url)
        sessions = make_sessionmaker(engine)
        rows = [
            ExpertRow.model_validate(
                {
                    "handle": f"e{e.index}",
                    "name": f"Expert {e.index}",
                    "email": f"e{e.index}@experts.example",
                    "timezone": "UTC",
                    "work_start_hour": 20,
                    "work_hours": 4,
                    "hourly_rate": f"{e.rate:.2f}",
                    "tier": "adjudicator" if e.adjudicator else "annotator",
                    "capacity": capacity,
                    "skills": ["finance"],
                    "languages": ["en"],
                }
            )
            for e in pool.experts
        ]
        path = workdir / f"items-{pool.seed}.jsonl"
        with path.open("w") as out:
            for i, truth in enumerate(pool.truth):
                prompt = pool.scenario(i) if pool.writes else f"Scenario {i}"
                row: dict[str, Any] = {"external_id": f"i{i}", "prompt": prompt, "language": "en"}
                if i in pool.gold:
                    row["gold_answer"] = {"verdict": truth}
                out.write(json.dumps(row) + "\n")
        batch_id = load_batch(sessions, parse_spec(_spec(pool.writes)), rows, path)
        with sessions() as session:
            project = project_spec(session, 1).project
            index_of = {eid: int(h[1:]) for eid, h in session.execute(select(ExpertModel.id, ExpertModel.handle))}
            item_of = {iid: int(ext[1:]) for iid, ext in session.execute(select(Item.id, Item.external_id))}

        answered: Counter[int] = Counter()
        written: dict[int, list[tuple[int, str]]] = defaultdict(list)
        cheated: set[tuple[int, int]] = set()
        paused_after: dict[int, int] = {}
        status, round_no, idle = "", 0, 0
        started = time.perf_counter()
        for round_no in range(1, MAX_ROUNDS + 1):  # noqa: B007  (the last round is reported)
            moved = 0
            with transaction(sessions) as session:
                moved += dispatch_batch(session, batch_id, NOW).assignments
                work = session.execute(
                    select(Assignment.id, Assignment.item_id, Assignment.expert_id).where(
                        Assignment.status == "assigned", Assignment.role == "annotate"
                    )
                ).all()
                start_assignments(session, {a: NOW - dt.timedelta(minutes=MINUTES) for a, _, _ in work})
                new = []
                for a, i, e in work:
                    answer: dict[str, Any] = {"verdict": pool.answer(item_of[i], index_of[e])}
                    if pool.writes:
                        answer["rationale"] = text = pool.rationale(item_of[i], index_of[e], written[i])
                        kind = pool.experts[index_of[e]].kind
                        if kind == "copy_paster" or (
                            kind == "near_duplicator" and any(n != index_of[e] for n, _ in written[i])
                        ):
                            cheated.add((index_of[e], item_of[i]))
                        written[i].append((index_of[e], text))
                    new.append(NewSubmission(a, answer))
                record_submissions(session, new, NOW)
                answered.update(index_of[e] for _, _, e in work)
            # One round as the review flow runs it: the submissions gate and aggregation part by
            # part, then the quality gate over the batch's experts.
            _, done = review_round(sessions, batch_id, None)
            status = done.batch_status
            moved += done.passed_items + done.more_overlap_items + done.adjudication_items + done.requeued_items
            with transaction(sessions) as session:
                if oracle_pause:
                    known_bad = [
                        e
                        for e, n in index_of.items()
                        if pool.experts[n].kind != "good" and answered[n] and n not in paused_after
                    ]
                    moved += gold.pause_and_requeue(session, batch_id, known_bad, "bench: oracle", "bench")
                    status = settle.settle_batch(session, batch_id)
                for expert_id in session.scalars(select(ExpertModel.id).where(ExpertModel.status == "paused")):
                    paused_after.setdefault(index_of[expert_id], answered[index_of[expert_id]])
            # The pool's adjudicators take what waits for them, through the workbench's own claim.
            with transaction(sessions) as session:
                adjudicators = session.scalars(
                    select(ExpertModel.id).where(ExpertModel.tier == "adjudicator", ExpertModel.status == "active")
                ).all()
                for expert_id in adjudicators:
                    while (assignment := claim_adjudication(session, expert_id, NOW)) is not None:
                        item_id = session.scalar(select(Assignment.item_id).where(Assignment.id == assignment))
                        start_assignments(session, {assignment: NOW - dt.timedelta(minutes=MINUTES)})
                        verdict = pool.answer(item_of[item_id], index_of[expert_id])
                        settled: dict[str, Any] = {"verdict": verdict}
                        if pool.writes:
                            settled["rationale"] = pool.rationale(item_of[item_id], index_of[expert_id], [])
                        submit_answer(session, expert_id, assignment, settled, NOW)
                        answered[index_of[expert_id]] += 1
                        moved += 1
            if status == "passed":
                # Adjudications answered after the last review settle in one more.
                with transaction(sessions) as session:
                    if session.scalar(select(func.count()).select_from(Item).where(Item.status == "adjudication")):
                        continue
                break
            idle = 0 if moved else idle + 1
            if idle >= 2:
                break
        seconds = time.perf_counter() - started
        with sessions() as session:
            finals = session.execute(
                select(Item.external_id, ItemResult.answer)
                .join(ItemResult, ItemResult.item_id == Item.id)
                .where(Item.is_gold.is_(False), Item.status == "passed")
            ).all()
            paid = session.execute(
                select(Assignment.expert_id, Assignment.role).join(
                    Submission, Submission.assignment_id == Assignment.id
                )
            ).all()
            # Where the answers went: gold items, work sent back (rejected), adjudication, the rest.
            spent = Counter(
                "gold" if is_gold else "adjudication" if role == "adjudicate" else status
                for role, status, is_gold in session.execute(
                    select(Assignment.role, Assignment.status, Item.is_gold)
                    .join(Submission, Submission.assignment_id == Assignment.id)
                    .join(Item, Item.id == Assignment.item_id)
                )
            )
            paused = set(session.scalars(select(ExpertModel.handle).where(ExpertModel.status == "paused")).all())
            flagged = {
                (index_of[e], item_of[i])
                for e, i in session.execute(
                    select(Assignment.expert_id, Assignment.item_id)
                    .join(Submission, Submission.assignment_id == Assignment.id)
                    .join(SubmissionSignal, SubmissionSignal.submission_id == Submission.id)
                    .where(SubmissionSignal.kind == "risk", SubmissionSignal.score >= RISK_FLAG)
                )
            }
            batch_status = session.get_one(Batch, batch_id).status
        engine.dispose()
    finally:
        drop_database(url)
    delivered = len(finals)
    correct = sum(1 for ext, answer in finals if answer.get("verdict") == pool.truth[int(ext[1:])])
    rates = project.payouts.role_rates
    pay = sum(pool.experts[index_of[e]].rate * MINUTES / 60 * float(rates.of(role)) for e, role in paid)
    paused_idx = {int(h[1:]) for h in paused}
    result = _metrics(pool, correct, delivered, len(paid), pay, paused_idx)
    careless_paused = [n for i, n in paused_after.items() if pool.experts[i].kind != "good"]
    result["median_answers_to_pause"] = statistics.median(careless_paused) if careless_paused else None
    result["stuck_batches"] = 0 if batch_status == "passed" else 1
    result["rounds"] = round_no
    result["spent"] = {k: round(v / max(delivered, 1), 3) for k, v in sorted(spent.items())}
    result["seconds"] = round(seconds, 1)
    result["caught"] = _caught(pool, answered, flagged, cheated, paused_idx)
    return result


def _caught(
    pool: Pool,
    answered: Counter[int],
    flagged: set[tuple[int, int]],
    cheated: set[tuple[int, int]],
    paused: set[int],
) -> dict[str, dict[str, float]]:
    """Per kind of expert: the share of their cheating answers (a pasted scenario, an edited copy)
    flagged as risky, of all their answers flagged, of them with any flagged answer, and of them
    paused. Good experts' flagged shares are the false alarms."""
    risky = Counter(expert for expert, _ in flagged)
    found = {}
    for kind in sorted({e.kind for e in pool.experts}):
        members = {e.index for e in pool.experts if e.kind == kind and answered[e.index]}
        if not members:
            continue
        cheats = {pair for pair in cheated if pair[0] in members}
        found[kind] = {
            "experts": len(members),
            "cheating_answers": len(cheats),
            "cheats_flagged": round(len(cheats & flagged) / len(cheats), 3) if cheats else 0.0,
            "answers_flagged": round(sum(risky[n] for n in members) / max(sum(answered[n] for n in members), 1), 3),
            "experts_flagged": round(sum(1 for n in members if risky[n]) / len(members), 3),
            "experts_paused": round(sum(1 for n in members if n in paused) / len(members), 3),
        }
    return found


def _metrics(
    pool: Pool, correct: int, delivered: int, assignments: int, pay: float, paused: set[int]
) -> dict[str, Any]:
    good = [e.index for e in pool.experts if e.kind == "good"]
    bad = [e.index for e in pool.experts if e.kind != "good"]
    return {
        "accuracy": correct / delivered if delivered else 0.0,
        "assignments_per_item": assignments / delivered if delivered else None,
        "pay_per_item": pay / delivered if delivered else None,
        "correct_per_1000_usd": correct / (pay / 1000) if pay else None,
        "good_paused_share": len(paused & set(good)) / len(good) if good else 0.0,
        "careless_paused_share": len(paused & set(bad)) / len(bad) if bad else 0.0,
        "median_answers_to_pause": None,
        "stuck_batches": 0,
    }


def run_baseline(pool: Pool, method: str) -> dict[str, Any] | None:
    from nightshift.fields.dawid_skene import dawid_skene

    items = [i for i in range(len(pool.truth)) if i not in pool.gold]
    chosen: dict[int, list[int]] = {}
    for i in items:
        order = pool.order(i)
        if method == "oracle":
            order = [e for e in order if pool.experts[e].kind == "good"]
        take = order[:2] if method == "ds_2to3" else order[:3]
        if method == "ds_2to3" and pool.answer(i, take[0]) != pool.answer(i, take[1]):
            take = order[:3]
        chosen[i] = take
    triples = [(i, e, pool.answer(i, e)) for i, es in chosen.items() for e in es]
    if method in ("mv3", "oracle"):
        finals = {}
        for i, es in chosen.items():
            votes = Counter(pool.answer(i, e) for e in es)
            top = max(votes.values())
            finals[i] = random.Random(_seed(pool.seed, "tie", i)).choice(
                sorted(v for v, c in votes.items() if c == top)
            )
    elif method in ("ds3", "ds_2to3"):
        model = dawid_skene(triples, OPTIONS, {})
        finals = {i: model.options[int(model.posteriors[i].argmax())] for i in chosen}
    elif method == "onecoin3":
        try:
            import pandas as pd
            from crowdkit.aggregation import OneCoinDawidSkene
        except ImportError:
            return None
        frame = pd.DataFrame(triples, columns=["task", "worker", "label"])
        finals = OneCoinDawidSkene(n_iter=100).fit_predict(frame).to_dict()
    else:
        raise ValueError(method)
    correct = sum(1 for i, v in finals.items() if v == pool.truth[i])
    pay = sum(pool.experts[e].rate * MINUTES / 60 for _, e, _ in triples)
    return _metrics(pool, correct, len(finals), len(triples), pay, set())


METHODS = ("nightshift", "nightshift_oracle_pause", "mv3", "ds3", "ds_2to3", "onecoin3", "oracle")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=4000)
    parser.add_argument("--experts", type=int, default=600)
    parser.add_argument("--careless", type=float, default=0.20)
    parser.add_argument("--spammers", type=float, default=0.05)
    parser.add_argument("--leaners", type=float, default=0.0, help="share who pick one favourite option half the time")
    parser.add_argument("--copiers", type=float, default=0.0, help="share who copy a careless partner's answers")
    parser.add_argument("--copy-pasters", type=float, default=0.0, help="share who paste the item as their rationale")
    parser.add_argument(
        "--near-duplicators", type=float, default=0.0, help="share who lightly edit another expert's rationale"
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--capacity", type=int, default=10, help="tasks each expert takes per round")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="nightshift-bench-quality-"))
    per_method: dict[str, list[dict[str, Any]]] = {m: [] for m in METHODS}
    for seed in range(1, args.seeds + 1):
        pool = make_pool(
            seed,
            args.items,
            args.experts,
            args.careless,
            args.spammers,
            args.leaners,
            args.copiers,
            args.copy_pasters,
            args.near_duplicators,
        )
        for method in METHODS:
            if method == "nightshift":
                result = run_nightshift(pool, workdir, args.capacity)
            elif method == "nightshift_oracle_pause":
                result = run_nightshift(pool, workdir, args.capacity, oracle_pause=True)
            else:
                result = run_baseline(pool, method)
            if result is not None:
                per_method[method].append(result)
        nightshift = per_method["nightshift"][-1]
        print(
            f"seed {seed}: nightshift {nightshift['rounds']} rounds in {nightshift['seconds']} s;"
            f" answers per delivered item by kind: {nightshift['spent']}",
            flush=True,
        )
        if pool.writes:
            for kind, caught in nightshift["caught"].items():
                print(
                    f"  {kind:<16} {caught['experts']:>4} experts: {caught['cheats_flagged']:.0%} of"
                    f" {caught['cheating_answers']} cheating answers flagged risky; {caught['answers_flagged']:.0%}"
                    f" of all answers, {caught['experts_flagged']:.0%} of experts flagged,"
                    f" {caught['experts_paused']:.0%} paused",
                    flush=True,
                )
    table = []
    for method, results in per_method.items():
        if not results:
            continue
        row: dict[str, Any] = {"method": method}
        for key in KEYS:
            values = [r[key] for r in results if r[key] is not None]
            row[key] = statistics.median(values) if values else None
        table.append(row)
    ds3 = next(r for r in table if r["method"] == "ds3")["correct_per_1000_usd"]
    print(
        f"{args.items} items, {args.experts} experts ({args.careless:.0%} careless, {args.spammers:.0%} spammers),"
        f" medians over {args.seeds} seeds"
    )
    print(f"{'method':<24}{'accuracy':>9}{'assign/item':>12}{'pay/item':>10}{'correct/$1k':>12}{'vs ds3':>8}"
          f"{'good paused':>12}{'bad paused':>11}{'to pause':>9}{'stuck':>6}")  # fmt: skip
    for row in table:
        ratio = row["correct_per_1000_usd"] / ds3 if ds3 and row["correct_per_1000_usd"] else None
        print(
            f"{row['method']:<24}{row['accuracy']:>9.3f}{_f(row['assignments_per_item'], 12, 2)}"
            f"{_f(row['pay_per_item'], 10, 2)}{_f(row['correct_per_1000_usd'], 12, 2)}{_f(ratio, 8, 2)}"
            f"{row['good_paused_share']:>12.3f}{row['careless_paused_share']:>11.3f}"
            f"{_f(row['median_answers_to_pause'], 9, 1)}{row['stuck_batches']:>6}"
        )
    if args.json:
        args.json.write_text(json.dumps(table, indent=2))


def _f(value: float | None, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


if __name__ == "__main__":
    main()
