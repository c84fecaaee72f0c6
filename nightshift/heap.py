"""The process's long-lived heap, kept out of the garbage collector's way."""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Move what is alive now (imported libraries, contexts built once per process) out of the
    collector's sight. Prefect, GX and pandas leave millions of long-lived objects, and every full
    collection walked them all while a flow allocated its chunks of rows: 40 % of ingest's Python
    time. Called once the heavy things are built; objects made later are collected as usual."""
    gc.collect()
    gc.freeze()
