"""Commands for qualification: exams and training sets, their pass rates, free-text grading."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import JsonFlag, emit, ready_sessions

exams_app = typer.Typer(help="Exams that grant skills at a level, and training sets for new experts.")


@exams_app.command("add")
def exams_add(file: Annotated[Path, typer.Argument(help="The exam or training set as YAML.")]) -> None:
    """Create an exam or training set, or update it (its items only while nobody has taken it)."""
    from nightshift.platform.db import transaction
    from nightshift.work import exams

    spec = exams.load_exam(file)
    with transaction(ready_sessions()) as session:
        exam_id, created = exams.add_exam(session, spec)
    what = "created" if created else "updated"
    typer.echo(
        f"{spec.kind} {spec.slug} {what} (id {exam_id}): {len(spec.items)} items, skill {spec.skill} "
        f"at level {spec.level}, pass mark {spec.pass_mark:.0%}"
    )


@exams_app.command("stats")
def exams_stats(as_json: JsonFlag = False) -> None:
    """Each exam's pass rate and each of its items' hit rate (the share answered right)."""
    from nightshift.work import exams

    with ready_sessions()() as session:
        found = exams.exam_stats(session)
    lines = []
    for exam in found:
        rate = "-" if exam["pass_rate"] is None else f"{exam['pass_rate']:.0%}"
        lines.append(
            f"{exam['exam']} ({exam['kind']}, {exam['skill']} level {exam['level']}): {exam['attempts']} attempts, "
            f"{exam['passed']}/{exam['finished']} passed ({rate})"
        )
        for item in exam["items"]:
            hit = "-" if item["hit_rate"] is None else f"{item['hit_rate']:.0%}"
            lines.append(f"  item {item['position']}: {item['right']}/{item['answered']} right ({hit})")
    emit(found, as_json, lines or ["no exams yet: `nightshift exams add FILE` adds one"])


@exams_app.command("pending")
def exams_pending(as_json: JsonFlag = False) -> None:
    """Free-text exam answers waiting for a grade."""
    from nightshift.work import exams

    with ready_sessions()() as session:
        found = exams.pending_grades(session)
    lines = [f"attempt {p['attempt']} item {p['item']} ({p['exam']} #{p['position']}): {p['answer']}" for p in found]
    emit(found, as_json, lines or ["no answer waits for a grade"])


@exams_app.command("grade")
def exams_grade(
    attempt: Annotated[int, typer.Argument(help="The attempt.")],
    item: Annotated[int, typer.Argument(help="The exam item.")],
    correct: Annotated[bool, typer.Option("--correct/--wrong", help="The grade.")],
    grader: Annotated[str, typer.Option("--by", help="Who grades (kept on the answer).")] = "ops",
) -> None:
    """Grade one free-text answer; the attempt is scored once none of its answers waits."""
    from nightshift.platform.db import transaction
    from nightshift.work import exams

    with transaction(ready_sessions()) as session:
        status = exams.grade(session, attempt, item, correct, grader)
    typer.echo(f"attempt {attempt}: item {item} graded {'right' if correct else 'wrong'}; attempt {status}")
