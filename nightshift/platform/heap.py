"""The process's long-lived heap, kept out of the garbage collector's way."""

from __future__ import annotations

import functools
import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_R = TypeVar("_R")


def settle_heap() -> None:
    """Move what is alive now (imported libraries, contexts built once per process) out of the
    collector's sight. Prefect, GX and pandas leave millions of long-lived objects, and every full
    collection walked them all while a flow allocated its chunks of rows, a large share of ingest's
    Python time. Called once the heavy things are built; objects made later are collected as usual."""
    gc.collect()
    gc.freeze()


# The collector's switch is the process's, shared by every thread: pauses are counted, and the
# last one to end switches it back on if it was on when the first began. So pauses nest (a flow's
# around a stage's, the dispatch planner's inside either) and overlap across threads: only the
# outermost re-enables. Code that pauses collection uses this, never gc.disable()/gc.enable().
_pause_lock = threading.Lock()
_pauses = 0
_was_enabled = False


@contextmanager
def collection_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: for code that builds a whole batch (hundreds of
    thousands of rows, dicts and answers) at once. Each allocation of containers counts towards
    the next collection, and each collection walks everything built so far, none of it garbage:
    much of the time of reading a review batch. Memory is still freed by reference
    counting as usual; cycles made inside wait for the first collection after. Re-entrant: an
    inner pause's end leaves collection off until the outermost one ends."""
    global _pauses, _was_enabled
    with _pause_lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()


def without_collection(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """The function runs inside collection_paused()."""

    @functools.wraps(function)
    def paused(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with collection_paused():
            return function(*args, **kwargs)

    return paused
