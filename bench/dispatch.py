"""Dispatch at scale: a pool of millions of experts, a batch of 100k items, overlap 3.

    uv run python bench/dispatch.py                                   # 2,000,000 experts, 100,000 items
    uv run python bench/dispatch.py --experts 20000 --items 2000      # a quick look

PostgreSQL on 127.0.0.1. The pool (40 skills, 20 languages, every time zone) and the batch are
generated in SQL; that set-up is not timed. Timed: the real dispatch flow (plan, sharded writes,
finish). Baseline in the same run: the naive way, one query and one insert per item, on a sample
of items, scaled to the batch. Then SQL checks the result: no expert twice on an item, nobody over
capacity, every skill and language matched.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import available_timezones

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("NIGHTSHIFT_HOME", tempfile.mkdtemp(prefix="nightshift-bench-home-"))

from nightshift.resources import prepare_process  # noqa: E402

prepare_process()

from bench import prefect_server  # noqa: E402

prefect_server.use_postgres()

import psycopg  # noqa: E402
import yaml  # noqa: E402

from bench.databases import drop_database, fresh_database, quiet  # noqa: E402

SKILLS = [f"skill-{i:02d}" for i in range(40)]
LANGUAGES = [
    *("en", "de", "fr", "es", "ja", "zh", "pt", "it", "nl", "ko"),
    *("ar", "hi", "ru", "pl", "sv", "tr", "id", "vi", "th", "he"),
]

SPEC = """
client: {slug: bench, name: Bench Client}
project:
  slug: bench-routing
  name: Routing at scale
  instructions: Grade the answer.
  input_fields:
    - {name: prompt, type: text}
    - {name: language, type: text}
    - {name: domain, type: text}
  labels:
    - {name: rating, type: ordinal_scale, min: 1, max: 7}
  skill_field: domain
  languages: [LANGS]
  overlap: {min: 3, max: 5}
  expected_minutes_per_item: 20
"""


def build_pool(plain: str, experts: int, items: int) -> None:
    """Experts, skills, languages and items straight from generate_series: fast and reproducible."""
    zones = sorted(available_timezones() - {"Factory", "localtime"})
    with psycopg.connect(plain, autocommit=True) as connection:
        run = connection.execute
        run("SELECT setseed(0.42)")  # random() below is then the same on every run
        run(
            "INSERT INTO experts (handle, name, email, timezone, work_start_hour, work_hours, hourly_rate, tier,"
            " capacity, reliability, status) "
            "SELECT 'x' || g, 'Expert ' || g, 'x' || g || '@experts.example', (%(zones)s::text[])[1 + g %% %(nz)s],"
            " 17 + g %% 7, 2 + g %% 3, 100 + g %% 151, (ARRAY['annotator','reviewer','adjudicator'])[1 + g %% 3],"
            " 4 + g %% 8, 0.4 + ((g::bigint * 7919) %% 600) / 1000.0,"
            " CASE WHEN g %% 50 = 0 THEN 'paused' ELSE 'active' END "
            "FROM generate_series(1, %(n)s) g",
            {"zones": zones, "nz": len(zones), "n": experts},
        )
        run(
            "INSERT INTO expert_skills (expert_id, skill) "
            "SELECT id, (%(skills)s::text[])[1 + floor(random() * 40)::int] FROM experts "
            "UNION SELECT id, (%(skills)s::text[])[1 + floor(random() * 40)::int] FROM experts",
            {"skills": SKILLS},
        )
        run(
            "INSERT INTO expert_languages (expert_id, language) "
            "SELECT id, (%(langs)s::text[])[1 + floor(random() * 20)::int] FROM experts "
            "UNION SELECT id, (%(langs)s::text[])[1 + floor(random() * 20)::int] FROM experts WHERE id %% 3 = 0",
            {"langs": LANGUAGES},
        )
        run(
            "INSERT INTO items (project_id, batch_id, external_id, content_hash, language, payload, status) "
            "SELECT 1, 1, 'item-' || g, md5(g::text) || md5(g::text), lang,"
            " jsonb_build_object('prompt', 'scenario ' || g, 'language', lang, 'domain', skill), 'pending' "
            "FROM (SELECT g, (%(langs)s::text[])[1 + floor(random() * 20)::int] AS lang,"
            " (%(skills)s::text[])[1 + floor(random() * 40)::int] AS skill FROM generate_series(1, %(n)s) g) s",
            {"langs": LANGUAGES, "skills": SKILLS, "n": items},
        )
        run("VACUUM ANALYZE")


def naive_dispatch(plain: str, sample: int, overlap: int) -> float:
    """The naive way: per item, one query for the best qualified experts with room, one insert."""
    started = time.perf_counter()
    with psycopg.connect(plain) as connection:
        items = connection.execute(
            "SELECT id, language, payload->>'domain' FROM items WHERE status = 'pending' ORDER BY id LIMIT %s",
            (sample,),
        ).fetchall()
        for item_id, language, skill in items:
            chosen = connection.execute(
                "SELECT e.id FROM experts e "
                "JOIN expert_skills s ON s.expert_id = e.id AND s.skill = %s "
                "JOIN expert_languages l ON l.expert_id = e.id AND l.language = %s "
                "WHERE e.status = 'active' AND e.capacity > "
                " (SELECT count(*) FROM assignments a WHERE a.expert_id = e.id AND a.status = 'assigned') "
                "AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.expert_id = e.id AND a.item_id = %s) "
                "ORDER BY e.reliability DESC LIMIT %s",
                (skill, language, item_id, overlap),
            ).fetchall()
            with connection.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO assignments (item_id, expert_id, role, status, due_at) "
                    "VALUES (%s, %s, 'annotate', 'assigned', now() + interval '1 day')",
                    [(item_id, expert_id) for (expert_id,) in chosen],
                )
        connection.rollback()  # the baseline's rows must not count for the real run
    return time.perf_counter() - started


def quiet_start(url: str) -> None:
    """No assignments, every item pending, statistics fresh, no checkpoint owed from the last run."""
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as connection:
        connection.execute("TRUNCATE assignments CASCADE")
        connection.execute("UPDATE items SET status = 'pending', status_reason = NULL WHERE batch_id = 1")
    quiet(url)


def check(plain: str) -> dict[str, int]:
    with psycopg.connect(plain) as connection:
        one = lambda sql: connection.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "assignments": one("SELECT count(*) FROM assignments"),
            "items not at overlap 3": one(
                "SELECT count(*) FROM items i WHERE (SELECT count(*) FROM assignments a WHERE a.item_id = i.id) <> 3"
            ),
            "expert twice on an item": one(
                "SELECT count(*) FROM (SELECT item_id, expert_id FROM assignments GROUP BY 1, 2 HAVING count(*) > 1) d"
            ),
            "experts over capacity": one(
                "SELECT count(*) FROM (SELECT a.expert_id FROM assignments a JOIN experts e ON e.id = a.expert_id "
                "WHERE a.status = 'assigned' GROUP BY a.expert_id, e.capacity HAVING count(*) > e.capacity) o"
            ),
            "skill not matched": one(
                "SELECT count(*) FROM assignments a JOIN items i ON i.id = a.item_id WHERE NOT EXISTS "
                "(SELECT 1 FROM expert_skills s WHERE s.expert_id = a.expert_id AND s.skill = i.payload->>'domain')"
            ),
            "language not matched": one(
                "SELECT count(*) FROM assignments a JOIN items i ON i.id = a.item_id WHERE NOT EXISTS "
                "(SELECT 1 FROM expert_languages l WHERE l.expert_id = a.expert_id AND l.language = i.language)"
            ),
            "inactive expert assigned": one(
                "SELECT count(*) FROM assignments a JOIN experts e ON e.id = a.expert_id WHERE e.status <> 'active'"
            ),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experts", type=int, default=2_000_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--naive-sample", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3, help="Timed runs of the flow and of the core; medians.")
    parser.add_argument("--shard-size", type=int, help="Assignments per write task (default: the flow's).")
    parser.add_argument("--keep", action="store_true", help="Keep the database and print its URL, for --reuse.")
    parser.add_argument("--reuse", help="A database URL a --keep run left: its pool is reused, its assignments reset.")
    args = parser.parse_args()
    url = args.reuse or fresh_database("postgresql", Path(tempfile.gettempdir()), 0)
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    os.environ["NIGHTSHIFT_DATABASE_URL"] = url
    pool_seconds = routes_seconds = 0.0
    try:
        from deployments.limits import apply_limits
        from flows.dispatch import DispatchParams, dispatch_flow
        from nightshift.dispatch.assignments import dispatch_batch
        from nightshift.experts.routing import refresh_routes
        from nightshift.platform.db import make_engine, make_sessionmaker, transaction
        from nightshift.platform.migrate import upgrade
        from nightshift.platform.models import Batch, utcnow
        from nightshift.projects.registry import apply_spec
        from nightshift.projects.spec import parse_spec

        upgrade(url)
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        if not args.reuse:
            with transaction(sessions) as session:
                spec = yaml.safe_load(SPEC.replace("LANGS", ", ".join(LANGUAGES)))
                apply_spec(session, parse_spec(spec, "bench"))
                # The batch, and an empty one dispatched first so the timed run does not pay for starting Prefect.
                for name in ("bench", "warm-up"):
                    session.add(
                        Batch(project_id=1, source=name, source_checksum=name, status="ingested", spec_version=1)
                    )
            started = time.perf_counter()
            build_pool(plain, args.experts, args.items)
            pool_seconds = time.perf_counter() - started
            started = time.perf_counter()
            with transaction(sessions) as session:
                refresh_routes(session)
            routes_seconds = time.perf_counter() - started
        with psycopg.connect(plain, autocommit=True) as connection:
            connection.execute("VACUUM ANALYZE expert_routes")
            routes = connection.execute("SELECT count(*) FROM expert_routes").fetchone()[0]
            pool = connection.execute("SELECT count(*) FROM experts").fetchone()[0]
            items = connection.execute("SELECT count(*) FROM items WHERE batch_id = 1").fetchone()[0]

        apply_limits()  # as production runs: the tag limits exist
        dispatch_flow(DispatchParams(batch_id=2))
        quiet_start(url)
        naive = naive_dispatch(plain, args.naive_sample, 3)
        naive_per_item = naive / args.naive_sample
        sizing = {"shard_size": args.shard_size} if args.shard_size else {}
        flow_runs: list[float] = []
        core_runs: list[float] = []
        for _ in range(args.repeat):
            quiet_start(url)
            started = time.perf_counter()
            result = dispatch_flow(DispatchParams(batch_id=1, **sizing))
            flow_runs.append(time.perf_counter() - started)
            checks = check(plain)
            # The same work through the core in one process and transaction, without Prefect's task
            # orchestration (and its API round trips for concurrency slots).
            quiet_start(url)
            started = time.perf_counter()
            with transaction(sessions) as session:
                core_made = dispatch_batch(session, 1, utcnow()).assignments
            core_runs.append(time.perf_counter() - started)
        seconds, core_seconds = statistics.median(flow_runs), statistics.median(core_runs)
        engine.dispose()
    finally:
        if args.keep:
            print(f"kept: --reuse {url}")
        elif not args.reuse:
            drop_database(url)

    naive_total = naive_per_item * items
    print(f"\nDispatch bench: {pool:,} experts, {items:,} items at overlap 3, PostgreSQL")
    print(f"  set-up (not timed)   pool {pool_seconds:.0f} s; routing index {routes_seconds:.0f} s, {routes:,} routes")
    print(f"  runs {args.repeat}, medians; the flow's runs took {', '.join(f'{t:.1f}' for t in flow_runs)} s")
    print(
        f"  dispatch flow        {seconds:8.1f} s  {result.assignments / seconds:10,.0f} assignments/s"
        f"  ({result.assignments:,} assignments, {result.unassignable:,} unassignable)"
    )
    print(
        f"  naive, per item      {naive_total:8.1f} s  {3 / naive_per_item:10,.0f} assignments/s"
        f"  (scaled from {args.naive_sample} items: {naive_per_item * 1000:.1f} ms per item)"
    )
    print(f"  core, one process    {core_seconds:8.1f} s  {core_made / core_seconds:10,.0f} assignments/s")
    print(f"  speed-up over naive  {naive_total / seconds:8.0f}x (flow), {naive_total / core_seconds:.0f}x (core)")
    print(
        f"  projected            {result.expected_hours:,.0f} expert hours, ${result.expected_cost_usd:,.0f}, "
        f"finish {result.projected_finish}"
    )
    for name, value in checks.items():
        print(f"  check: {name:<26} {value:,}")


if __name__ == "__main__":
    main()
