"""Qualification as ops read it: each exam's pass rate and its items' hit rates, as table rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from nightshift.work.exams import exam_stats


def exam_table(sessions: sessionmaker[Session]) -> list[dict[str, Any]]:
    """One row per exam item, with its exam's figures: an item nobody gets right (a wrong key) or
    everybody does (no test) shows in its hit rate."""
    with sessions() as session:
        stats = exam_stats(session)
    return [
        {
            "exam": exam["exam"],
            "kind": exam["kind"],
            "skill": f"{exam['skill']} level {exam['level']}",
            "pass rate": "-" if exam["pass_rate"] is None else f"{exam['pass_rate']:.0%}",
            "passed / finished": f"{exam['passed']} / {exam['finished']}",
            "item": str(item["position"]),
            "hit rate": "-" if item["hit_rate"] is None else f"{item['hit_rate']:.0%}",
            "right / answered": f"{item['right']} / {item['answered']}",
        }
        for exam in stats
        for item in exam["items"]
    ]
