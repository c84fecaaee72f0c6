"""Expert pay: server-side time capped per task, exact cents, periods in the payroll's time zone,
bonus and deduction rules from the spec, an append-only ledger that never pays twice."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError

from nightshift.dispatch.assignments import dispatch_batch
from nightshift.payouts.ledger import add_correction, pay_period, time_pay
from nightshift.payouts.periods import Period
from nightshift.payouts.statements import export_csv, statement
from nightshift.platform.db import transaction
from nightshift.platform.errors import NightshiftError
from nightshift.platform.models import Assignment, Expert, GoldAnswer, Item, PayoutEntry, Submission
from nightshift.projects.registry import apply_spec
from nightshift.projects.spec import Bonus
from nightshift.reports.status import batch_statuses
from nightshift.work.submissions import NewSubmission, record_submissions, start_assignments
from tests.conftest import SAMPLES
from tests.nightshift.ingest.test_ingest import ingest_file

UTC = dt.UTC
T0 = dt.datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # a Tuesday of ISO week 2026-W48
ANSWER = {"rating": 5, "error_tags": [], "rationale": "r" * 50, "improved_prompt": "p" * 90}


# --- money and time -------------------------------------------------------------------------


def test_each_line_is_rounded_half_up_to_the_cent_and_checkable_by_hand() -> None:
    # 7 minutes at $100/h is 11.666…: 11.67, and three such lines total 35.01, the sum of the lines.
    assert time_pay(420, Decimal("100"), Decimal("1"), 60) == (Decimal("7.00"), Decimal("100.00"), Decimal("11.67"))
    # 0.125 goes up (half up), where banker's rounding would give 0.12.
    assert time_pay(3, Decimal("150"), Decimal("1"), 60)[2] == Decimal("0.13")
    # A role's multiplier: 123.45 x 1.25 = 154.3125, shown and paid as 154.31 an hour.
    minutes, rate, amount = time_pay(3600, Decimal("123.45"), Decimal("1.25"), 60)
    assert (minutes, rate, amount) == (Decimal("60.00"), Decimal("154.31"), Decimal("154.31"))
    assert all(isinstance(v, Decimal) for v in (minutes, rate, amount))


def test_time_on_task_is_capped_so_an_open_tab_does_not_bill() -> None:
    five_hours = 5 * 3600
    assert time_pay(five_hours, Decimal("200"), Decimal("1"), 45) == (
        Decimal("45.00"),
        Decimal("200.00"),
        Decimal("150.00"),
    )


# --- periods ----------------------------------------------------------------------------------


def test_a_week_starts_at_monday_midnight_in_the_payroll_time_zone() -> None:
    assert Period.parse("2026-W48", "UTC").start == dt.datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
    assert Period.parse("2026-W48", "America/Los_Angeles").start == dt.datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    assert Period.parse("2026-W48", "Asia/Tokyo").start == dt.datetime(2026, 11, 22, 15, 0, tzinfo=UTC)
    week = Period.parse("2026-W48", "UTC")
    assert week.end - week.start == dt.timedelta(days=7)


def test_a_month_follows_daylight_saving_and_the_year_end() -> None:
    march = Period.parse("2026-03", "America/New_York")
    assert march.start == dt.datetime(2026, 3, 1, 5, 0, tzinfo=UTC)  # EST
    assert march.end == dt.datetime(2026, 4, 1, 4, 0, tzinfo=UTC)  # EDT
    december = Period.parse("2026-12", "UTC")
    assert december.end == dt.datetime(2027, 1, 1, tzinfo=UTC)


def test_the_default_period_is_the_last_complete_week() -> None:
    monday_morning = dt.datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    assert Period.last_complete_week(monday_morning).label == "2026-W48"
    assert Period.week_of(monday_morning).label == "2026-W49"


@pytest.mark.parametrize(
    ("label", "zone", "says"),
    [
        ("2026-W54", "UTC", "no such ISO week"),
        ("2026-13", "UTC", "no such month"),
        ("last week", "UTC", "expected an ISO week"),
        ("2026-W48", "Mars/Olympus", "unknown time zone"),
    ],
)
def test_a_bad_period_or_zone_gets_one_clear_line(label: str, zone: str, says: str) -> None:
    with pytest.raises(NightshiftError, match=says):
        Period.parse(label, zone)


# --- the ledger on a real database ---------------------------------------------------------------


def _batch(sessions, at: dt.datetime = T0) -> int:
    batch_id, _ = ingest_file(sessions, SAMPLES / "items.jsonl")
    with transaction(sessions) as session:
        dispatch_batch(session, batch_id, at)
    return batch_id


def _assignments(session, expert_id: int | None = None) -> list[Assignment]:
    query = select(Assignment).order_by(Assignment.id)
    if expert_id is not None:
        query = query.where(Assignment.expert_id == expert_id)
    return list(session.scalars(query))


def _work(sessions, ids: list[int], opened: dt.datetime, submitted: dt.datetime, answers=None) -> None:
    answers = answers or {}
    with transaction(sessions) as session:
        start_assignments(session, dict.fromkeys(ids, opened))
        record_submissions(session, [NewSubmission(a, answers.get(a, ANSWER)) for a in ids], submitted)


def _entries(sessions, kind: str | None = None) -> list[PayoutEntry]:
    with sessions() as session:
        query = select(PayoutEntry).order_by(PayoutEntry.id)
        if kind:
            query = query.where(PayoutEntry.kind == kind)
        return list(session.scalars(query))


def _busiest_experts(sessions, n: int) -> list[int]:
    with sessions() as session:
        return list(
            session.scalars(
                select(Assignment.expert_id)
                .group_by(Assignment.expert_id)
                .order_by(func.count().desc(), Assignment.expert_id)
                .limit(n)
            )
        )


def test_time_is_measured_by_the_server_from_first_opening(sessions, project) -> None:
    _batch(sessions)
    with sessions() as session:
        first, second, unopened = (a.id for a in _assignments(session)[:3])
    with transaction(sessions) as session:
        start_assignments(session, {first: T0, second: T0 + dt.timedelta(minutes=5)})
        start_assignments(session, {first: T0 + dt.timedelta(minutes=9)})  # opening again changes nothing
        record_submissions(
            session,
            [NewSubmission(first, ANSWER), NewSubmission(second, ANSWER), NewSubmission(unopened, ANSWER)],
            T0 + dt.timedelta(minutes=10),
        )
    with sessions() as session:
        worked = dict(session.execute(select(Assignment.id, Assignment.worked_seconds)).all())
        on_task = dict(session.execute(select(Submission.assignment_id, Submission.time_on_task_seconds)).all())
    assert (worked[first], worked[second], worked[unopened]) == (600, 300, 0)
    # The time-on-task gate reads the same server-side figure; a never-opened task has none to bill.
    assert on_task == {first: 600, second: 300, unopened: 0}


def test_a_period_pays_its_submitted_time_once_however_often_it_runs(sessions, project, tmp_path) -> None:
    _batch(sessions)
    expert_id = _busiest_experts(sessions, 1)[0]
    with sessions() as session:
        ids = [a.id for a in _assignments(session, expert_id)]
        rate = session.get_one(Expert, expert_id).hourly_rate
    assert len(ids) >= 3
    # 20 minutes each, and one tab left open for 5 hours, billed at the spec's 60-minute cap.
    _work(sessions, ids[:-1], T0, T0 + dt.timedelta(minutes=20))
    _work(sessions, ids[-1:], T0, T0 + dt.timedelta(hours=5))
    week = Period.parse("2026-W48", "UTC")
    after = week.end + dt.timedelta(hours=6)
    with transaction(sessions) as session:
        first = pay_period(session, week, after)
    expected = (len(ids) - 1) * time_pay(1200, rate, Decimal(1), 60)[2] + time_pay(3600, rate, Decimal(1), 60)[2]
    assert first.time_entries == len(ids)
    assert sum(e.amount for e in _entries(sessions, "time")) == expected
    capped = next(e for e in _entries(sessions, "time") if e.assignment_id == ids[-1])
    assert capped.minutes == Decimal("60.00") and "capped" in (capped.note or "")
    with sessions() as session:
        path, payees, total = export_csv(session, week.label, tmp_path)
    before = path.read_bytes()

    with transaction(sessions) as session:
        again = pay_period(session, week, after)
    assert (again.time_entries, again.deductions, again.bonuses, again.paid_now) == (0, 0, 0, Decimal("0"))
    assert len(_entries(sessions, "time")) == len(ids)
    with sessions() as session:
        export_csv(session, week.label, tmp_path)
    assert path.read_bytes() == before
    assert payees >= 1 and total >= expected


def test_period_boundaries_follow_the_payroll_time_zone_and_never_pay_twice(sessions, project) -> None:
    _batch(sessions, at=dt.datetime(2026, 11, 22, 12, 0, tzinfo=UTC))
    with sessions() as session:
        late_sunday, monday = (a.id for a in _assignments(session)[:2])
    # 03:00 UTC on Monday 23 November is still Sunday evening in Los Angeles: week 47 there.
    _work(
        sessions,
        [late_sunday],
        dt.datetime(2026, 11, 23, 2, 30, tzinfo=UTC),
        dt.datetime(2026, 11, 23, 3, 0, tzinfo=UTC),
    )
    _work(sessions, [monday], dt.datetime(2026, 11, 23, 9, 0, tzinfo=UTC), dt.datetime(2026, 11, 23, 9, 30, tzinfo=UTC))
    now = dt.datetime(2026, 12, 1, tzinfo=UTC)
    with transaction(sessions) as session:
        la_47 = pay_period(session, Period.parse("2026-W47", "America/Los_Angeles"), now)
        la_48 = pay_period(session, Period.parse("2026-W48", "America/Los_Angeles"), now)
    assert (la_47.time_entries, la_48.time_entries) == (1, 1)
    by_assignment = {e.assignment_id: e.period for e in _entries(sessions, "time")}
    assert by_assignment == {late_sunday: "2026-W47", monday: "2026-W48"}
    # The same week counted in UTC holds both, but both are already paid.
    with transaction(sessions) as session:
        utc_48 = pay_period(session, Period.parse("2026-W48", "UTC"), now)
    assert utc_48.time_entries == 0


def test_rejected_work_is_deducted_as_the_spec_says_in_the_period_that_finds_it(sessions, project) -> None:
    _batch(sessions)
    with sessions() as session:
        kept, rejected, rejected_later = (a.id for a in _assignments(session)[:3])
    _work(sessions, [kept, rejected, rejected_later], T0, T0 + dt.timedelta(minutes=30))
    with transaction(sessions) as session:
        session.execute(
            update(Assignment).where(Assignment.id == rejected).values(status="rejected", status_reason="rushed")
        )
        pay_period(session, Period.parse("2026-W48"), T0 + dt.timedelta(days=1))
    [deduction] = _entries(sessions, "deduction")
    time_of = {e.assignment_id: e.amount for e in _entries(sessions, "time")}
    # The sample spec keeps none of a rejected task's pay.
    assert deduction.assignment_id == rejected and deduction.amount == -time_of[rejected]
    assert deduction.period == "2026-W48" and "rushed" in (deduction.note or "")

    # Rejected after it was paid: the deduction is a new entry in the next period; nothing is edited.
    with transaction(sessions) as session:
        session.execute(update(Assignment).where(Assignment.id == rejected_later).values(status="rejected"))
        pay_period(session, Period.parse("2026-W49"), T0 + dt.timedelta(days=8))
    later = next(e for e in _entries(sessions, "deduction") if e.assignment_id == rejected_later)
    assert later.period == "2026-W49" and later.amount == -time_of[rejected_later]
    assert {e.assignment_id: e.amount for e in _entries(sessions, "time")} == time_of


def test_a_spec_that_keeps_half_of_rejected_pay_deducts_half(sessions, project) -> None:
    payouts = project.project.payouts.model_copy(update={"rejected_pay_share": Decimal("0.5")})
    with transaction(sessions) as session:
        apply_spec(
            session, project.model_copy(update={"project": project.project.model_copy(update={"payouts": payouts})})
        )
    _batch(sessions)
    with sessions() as session:
        one = _assignments(session)[0].id
    _work(sessions, [one], T0, T0 + dt.timedelta(minutes=7))
    with transaction(sessions) as session:
        session.execute(update(Assignment).where(Assignment.id == one).values(status="rejected"))
        pay_period(session, Period.parse("2026-W48"), T0 + dt.timedelta(days=1))
    [paid] = _entries(sessions, "time")
    [deduction] = _entries(sessions, "deduction")
    assert deduction.amount == -(paid.amount / 2).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")


def _with_bonuses(sessions, project, *bonuses: Bonus) -> None:
    payouts = project.project.payouts.model_copy(update={"bonuses": list(bonuses)})
    with transaction(sessions) as session:
        apply_spec(
            session, project.model_copy(update={"project": project.project.model_copy(update={"payouts": payouts})})
        )


def test_gold_accuracy_bonus_goes_to_experts_above_the_threshold_with_enough_evidence(sessions, project) -> None:
    _with_bonuses(sessions, project, Bonus(rule="gold_accuracy", min=0.9, percent=Decimal("10"), min_count=1))
    _batch(sessions)
    with sessions() as session:
        gold = session.execute(
            select(Assignment.id, Assignment.expert_id, GoldAnswer.answer)
            .join(Item, Item.id == Assignment.item_id)
            .join(GoldAnswer, GoldAnswer.item_id == Item.id)
            .order_by(Assignment.id)
        ).all()
    experts = sorted({expert_id for _, expert_id, _ in gold})
    assert len(experts) >= 2
    right, wrong = experts[0], experts[1]
    answers = {}
    for assignment_id, expert_id, reference in gold:
        if expert_id == right:
            answers[assignment_id] = reference
        elif expert_id == wrong:
            answers[assignment_id] = dict(reference, rating=1 if reference["rating"] > 3 else 7)
    with sessions() as session:
        work = [a.id for e in (right, wrong) for a in _assignments(session, e)]
    _work(sessions, work, T0, T0 + dt.timedelta(minutes=15), answers)

    week = Period.parse("2026-W48")
    with transaction(sessions) as session:
        still_open = pay_period(session, week, T0 + dt.timedelta(days=1))
    assert still_open.bonuses == 0 and "still open" in still_open.notes[0]
    with transaction(sessions) as session:
        closed = pay_period(session, week, week.end)
    assert closed.bonuses == 1
    [bonus] = _entries(sessions, "bonus")
    earned = sum(e.amount for e in _entries(sessions, "time") if e.expert_id == right)
    assert bonus.expert_id == right and bonus.amount == (earned / 10).quantize(Decimal("0.01"))
    assert "gold accuracy" in (bonus.note or "")
    with transaction(sessions) as session:
        assert pay_period(session, week, week.end).bonuses == 0  # judged once per period


def test_a_bonus_needs_its_minimum_evidence(sessions, project) -> None:
    _with_bonuses(sessions, project, Bonus(rule="gold_accuracy", min=0.5, percent=Decimal("10"), min_count=50))
    _batch(sessions)
    with sessions() as session:
        everything = [a.id for a in _assignments(session)]
    _work(sessions, everything, T0, T0 + dt.timedelta(minutes=15))
    week = Period.parse("2026-W48")
    with transaction(sessions) as session:
        assert pay_period(session, week, week.end).bonuses == 0


def test_on_time_bonus_counts_expired_and_late_work_against_the_expert(sessions, project) -> None:
    _with_bonuses(sessions, project, Bonus(rule="on_time_rate", min=0.95, percent=Decimal("5"), min_count=2))
    _batch(sessions)
    punctual, late, missing = _busiest_experts(sessions, 3)
    with sessions() as session:
        on_time = [a.id for e in (punctual, late) for a in _assignments(session, e)]
        late_ones = [a.id for a in _assignments(session, late)][:1]
        partial = [a.id for a in _assignments(session, missing)][1:]
    _work(sessions, [a for a in on_time if a not in late_ones], T0, T0 + dt.timedelta(hours=1))
    # Due 24 h after dispatch: this one comes in a day late.
    _work(sessions, late_ones, T0 + dt.timedelta(hours=47), T0 + dt.timedelta(hours=48))
    _work(sessions, partial, T0, T0 + dt.timedelta(hours=1))  # one of `missing`'s tasks never arrives
    week = Period.parse("2026-W48")
    with transaction(sessions) as session:
        pay_period(session, week, week.end)
    assert {e.expert_id for e in _entries(sessions, "bonus")} == {punctual}


def test_the_ledger_is_append_only_and_corrections_are_new_entries(sessions, project) -> None:
    _batch(sessions)
    with sessions() as session:
        one = _assignments(session)[0]
    _work(sessions, [one.id], T0, T0 + dt.timedelta(minutes=10))
    week = Period.parse("2026-W48")
    with transaction(sessions) as session:
        pay_period(session, week, T0 + dt.timedelta(days=1))
    for statement_sql in ("UPDATE payout_entries SET amount = 0", "DELETE FROM payout_entries"):
        with pytest.raises(DBAPIError, match="append-only"), transaction(sessions) as session:
            session.execute(text(statement_sql))
    with transaction(sessions) as session:
        project_id = session.scalar(select(Item.project_id).limit(1))
        assert add_correction(
            session, one.expert_id, project_id, Decimal("-2.50"), "double-counted break", "OPS-7", week
        )
        assert not add_correction(
            session, one.expert_id, project_id, Decimal("-2.50"), "double-counted break", "OPS-7", week
        )
        with pytest.raises(NightshiftError, match="whole cents"):
            add_correction(session, one.expert_id, project_id, Decimal("0.001"), "x", "OPS-8", week)
        with pytest.raises(NightshiftError, match="reason"):
            add_correction(session, one.expert_id, project_id, Decimal("1"), " ", "OPS-9", week)
    assert [e.kind for e in _entries(sessions)] == ["time", "correction"]


def test_statement_and_payments_file_hold_each_expert_s_own_lines(sessions, project, tmp_path) -> None:
    _batch(sessions)
    first, second = _busiest_experts(sessions, 2)
    with sessions() as session:
        ids = {e: [a.id for a in _assignments(session, e)] for e in (first, second)}
        handles = {e: session.get_one(Expert, e).handle for e in (first, second)}
        emails = {e: session.get_one(Expert, e).email for e in (first, second)}
    _work(sessions, ids[first] + ids[second], T0, T0 + dt.timedelta(minutes=12))
    week = Period.parse("2026-W48")
    with transaction(sessions) as session:
        pay_period(session, week, T0 + dt.timedelta(days=1))
    with sessions() as session:
        mine = statement(session, handles[first], week.label)
        path, _, total = export_csv(session, week.label, tmp_path)
    assert len(mine.lines) == len(ids[first])
    assert {line["assignment_id"] for line in mine.lines} == set(ids[first])
    assert Decimal(mine.total) == sum(Decimal(line["amount"]) for line in mine.lines)
    rows = list(csv.DictReader(path.read_text().splitlines()))
    assert [r["payee_id"] for r in rows] == sorted(handles.values())
    assert {r["payee_email"] for r in rows} == set(emails.values())
    assert Decimal(rows[0]["amount"]) + Decimal(rows[1]["amount"]) == total
    assert {r["amount"] for r in rows} == {mine.total, statement(sessions(), handles[second], week.label).total}


def test_status_shows_cost_against_the_budget(sessions, project) -> None:
    batch_id = _batch(sessions)
    with sessions() as session:
        ids = [a.id for a in _assignments(session)][:10]
        rates = [session.get_one(Expert, session.get_one(Assignment, a).expert_id).hourly_rate for a in ids]
    _work(sessions, ids, T0, T0 + dt.timedelta(minutes=30))
    with sessions() as session:
        [status] = batch_statuses(session, [batch_id])
    assert Decimal(status.cost_so_far_usd) == sum(r / 2 for r in rates)
    assert status.budget_usd == "50000" and status.project_budget_usd == "250000"
    assert status.project_cost_usd == status.cost_so_far_usd


def test_status_cost_is_to_the_cent_what_the_ledger_pays(sessions, project) -> None:
    batch_id = _batch(sessions)
    with sessions() as session:
        ids = [a.id for a in _assignments(session)][:40]
    # Odd times (7 min 13 s, ...) so every line rounds; a quarter of the work is rejected.
    for n, assignment_id in enumerate(ids):
        _work(sessions, [assignment_id], T0, T0 + dt.timedelta(seconds=433 + 17 * n))
    with transaction(sessions) as session:
        session.execute(update(Assignment).where(Assignment.id.in_(ids[::4])).values(status="rejected"))
        pay_period(session, Period.parse("2026-W48"), T0 + dt.timedelta(days=1))
        [status] = batch_statuses(session, [batch_id])
    ledger = sum(e.amount for e in _entries(sessions))
    assert _entries(sessions, "deduction")
    assert Decimal(status.cost_so_far_usd) == ledger
