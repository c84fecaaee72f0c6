"""A gate in a process of its own: Great Expectations and pandas live there, not in the caller.

Ingest streams files of any size and must keep a small, flat footprint; GX and the pandas, numpy
and scipy it imports outweigh the rest of ingest before a row is read, so its chunk gate runs here. The caller
sends a function and small arguments (per-row lengths and ids, never the texts), and waits on a
socket, off the GIL, while the gate runs on another core.

Started as ``python -m expectations.worker``, so the child imports only what a gate needs. (A
multiprocessing pool would re-import the parent's ``__main__`` in the child: the Prefect engine
or the CLI, which is the weight this keeps out.) Messages go over ``multiprocessing.connection``:
framed, pickled, and authenticated by a key only the two processes know.
"""

from __future__ import annotations

import atexit
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Client, Connection, Listener
from typing import Any, TypeVar

KEY_ENV = "NIGHTSHIFT_GATE_WORKER_KEY"
T = TypeVar("T")


class GateWorkerError(RuntimeError):
    """The worker process is gone (killed, out of memory): the call may be retried."""


class GateWorker:
    """One child process, started on first use and again after it dies; calls are serialised."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._connection: Connection | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """function(*args) in the worker; its exceptions come back as RuntimeError with its message."""
        with self._lock:
            connection = self._connection or self._start()
            try:
                connection.send((function, args))
                status, value = connection.recv()
            except (EOFError, OSError):
                code = self._stop()
                raise GateWorkerError(f"the gate worker process stopped (exit code {code})") from None
            except BaseException:
                # Interrupted between a request and its reply: the next reply would answer the
                # wrong call, so this worker is done.
                self._stop()
                raise
        if status == "error":
            raise RuntimeError(value)
        return value  # type: ignore[no-any-return]

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _start(self) -> Connection:
        key = secrets.token_bytes(32)
        env = dict(os.environ)
        env[KEY_ENV] = key.hex()
        # The child resolves imports as this process does (a bench or test may have extended the path).
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        process = subprocess.Popen(
            [sys.executable, "-m", "expectations.worker"], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE
        )
        assert process.stdout is not None
        line = process.stdout.readline()
        process.stdout.close()
        if not line.strip().isdigit():
            process.kill()
            raise GateWorkerError(f"the gate worker process did not start (exit code {process.wait()})")
        self._process = process
        self._connection = Client(("127.0.0.1", int(line)), authkey=key)
        return self._connection

    def _stop(self) -> int | None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        process, self._process = self._process, None
        if process is None:
            return None
        try:
            # Without its connection the worker returns from recv() and exits by itself.
            return process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()


def shared_worker() -> GateWorker:
    """The process's worker, made on first use and stopped at exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = GateWorker()
            atexit.register(_shared.close)
        return _shared


_shared: GateWorker | None = None
_shared_lock = threading.Lock()


def serve(connection: Connection) -> None:
    """Answer calls until the caller hangs up."""
    while True:
        try:
            function, args = connection.recv()
        except EOFError:
            return
        try:
            reply: tuple[str, Any] = ("ok", function(*args))
        except Exception as exc:  # reported to the caller, which raises it; the worker serves on
            reply = ("error", str(exc) or type(exc).__name__)
        try:
            connection.send(reply)
        except OSError:  # the caller died while it waited
            return


def main() -> None:
    key = bytes.fromhex(os.environ.pop(KEY_ENV))
    with Listener(("127.0.0.1", 0), authkey=key) as listener:
        sys.stdout.write(f"{listener.address[1]}\n")
        sys.stdout.flush()
        # stdout carried only the port: whatever a library prints from now on goes to stderr.
        os.dup2(2, 1)
        with listener.accept() as connection:
            serve(connection)


if __name__ == "__main__":
    main()
