"""Pausing the garbage collector for whole-batch work, from several threads at once."""

from __future__ import annotations

import gc
import threading

import pytest

from nightshift.platform.heap import collection_paused, without_collection


def test_a_pause_switches_collection_off_and_back_on() -> None:
    assert gc.isenabled()
    with collection_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_overlapping_pauses_in_two_threads_leave_collection_on_only_after_the_last() -> None:
    # Thread A pauses first and ends first; B, still inside, must stay paused, and when B ends the
    # collector must be on again (a naive save-and-restore in B would leave it off for good).
    a_inside, b_inside, a_done = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, bool] = {}

    def first() -> None:
        with collection_paused():
            a_inside.set()
            b_inside.wait()
        a_done.set()

    def second() -> None:
        a_inside.wait()
        with collection_paused():
            b_inside.set()
            a_done.wait()
            seen["b after a ended"] = gc.isenabled()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"b after a ended": False}
    assert gc.isenabled()


def test_a_pause_that_began_with_collection_off_leaves_it_off() -> None:
    gc.disable()
    try:
        with collection_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_decorator_pauses_and_an_error_still_switches_collection_back_on() -> None:
    @without_collection
    def fails() -> None:
        assert not gc.isenabled()
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        fails()
    assert gc.isenabled()


def test_nested_pauses_leave_collection_off_until_the_outermost_ends() -> None:
    with collection_paused():
        with collection_paused():
            assert not gc.isenabled()
        # The inner pause ended: the outer one still holds.
        assert not gc.isenabled()
        with pytest.raises(ValueError, match="inner"), collection_paused():
            raise ValueError("inner")
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_dispatch_planner_nested_in_a_pause_does_not_switch_collection_back_on(sessions, project) -> None:
    import datetime as dt

    from nightshift.dispatch.plan import plan_in_shards
    from tests.conftest import SAMPLES
    from tests.nightshift.ingest.test_ingest import ingest_file

    batch_id, _ = ingest_file(sessions, SAMPLES / "items.jsonl")
    now = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
    with sessions() as session:
        with collection_paused():
            parts = plan_in_shards(session, batch_id, now, 100)
            next(parts)
            # Mid-plan, collection is off; the planner's pause ends inside the outer one (a flow's).
            assert not gc.isenabled()
            assert list(parts)
            assert not gc.isenabled()
        assert gc.isenabled()
        # On its own, the planner pauses too, and switches collection back on after.
        parts = plan_in_shards(session, batch_id, now, 100)
        next(parts)
        assert not gc.isenabled()
        assert list(parts)
        assert gc.isenabled()
