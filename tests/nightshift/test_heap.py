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
