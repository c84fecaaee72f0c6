"""What the state folder's background processes (the gate's worker, the local Prefect API) share:
a record under ``home/run/`` that names the process, a lock for whoever starts one, and a check
that the process named is still there."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def run_folder(home: Path) -> Path:
    """home/run, the owner's alone: records there may hold keys."""
    folder = (home / "run").resolve()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """One process at a time looks for a background process and, if need be, starts it."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_record(path: Path) -> dict[str, Any] | None:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Written whole (a reader never sees half of it) and readable by the owner only."""
    temporary = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(record, handle)
    temporary.replace(path)


def alive(pid: Any) -> bool:
    """The process runs (a child of ours that has exited is reaped here, and is not alive)."""
    try:
        number = int(pid)
        os.kill(number, 0)
    except (OSError, TypeError, ValueError):
        return False
    with contextlib.suppress(ChildProcessError, OSError):
        if os.waitpid(number, os.WNOHANG) != (0, 0):
            return False
    return True
