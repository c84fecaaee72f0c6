"""A gate in a process of its own: Great Expectations and pandas live there, not in the caller.

Ingest streams files of any size and must keep a small, flat footprint; GX and the pandas, numpy
and scipy it imports outweigh the rest of ingest before a row is read, so its chunk gate runs here. The caller
sends a function and small arguments (per-row lengths and ids, never the texts), and waits on a
socket, off the GIL, while the gate runs on another core.

Two ways to own one:
- private (``GateWorker()``): a child of this process, gone when it hangs up;
- shared (``GateWorker(home, idle_seconds)``): one per state folder, found through a record in
  ``home/run/`` and left running between commands until it has had no caller for idle_seconds.
  Loading GX costs seconds on every start; a command that finds the worker warm pays none of it.

Started as ``python -m expectations.worker``, so the child imports only what a gate needs. (A
multiprocessing pool would re-import the parent's ``__main__`` in the child: the Prefect engine
or the CLI, which is the weight this keeps out.) Messages go over ``multiprocessing.connection``:
framed, pickled, and authenticated by a key only the callers know (the shared record is the
owner's alone to read, like the SQLite file beside it).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Any, TypeVar

from nightshift.platform.background import alive, locked, read_record, run_folder, write_record

KEY_ENV = "NIGHTSHIFT_GATE_WORKER_KEY"
IDLE_ENV = "NIGHTSHIFT_GATE_WORKER_IDLE"
RECORD_NAME = "gate-worker.json"
T = TypeVar("T")


class GateWorkerError(RuntimeError):
    """The worker process is gone (killed, out of memory): the call may be retried."""


def warm_up() -> None:
    """Load what every gate needs, so the first real call does not wait for it."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations  # noqa: F401
    import pandas  # noqa: F401


class GateWorker:
    """One worker process, started on first use and again after it dies; calls are serialised.

    home: share one worker per state folder (see the module's docstring); None: a private child."""

    def __init__(self, home: Path | None = None, idle_seconds: float = 0) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._connection: Connection | None = None
        self._pid: int | None = None
        self._run_dir = run_folder(home) if home is not None and idle_seconds > 0 else None
        self._idle_seconds = idle_seconds

    @property
    def pid(self) -> int | None:
        return self._pid

    @property
    def shared(self) -> bool:
        return self._run_dir is not None

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """function(*args) in the worker; its exceptions come back as RuntimeError with its message."""
        with self._lock:
            connection = self._connection or self._connect()
            try:
                connection.send((function, args))
                status, value = connection.recv()
            except (EOFError, OSError):
                code = self._stop()
                raise GateWorkerError(f"the gate worker process stopped (exit code {code})") from None
            except BaseException:
                # Interrupted between a request and its reply: the next reply would answer the
                # wrong call, so this connection is done.
                self._stop()
                raise
        if status == "error":
            raise RuntimeError(value)
        return value  # type: ignore[no-any-return]

    def warm_in_background(self) -> threading.Thread:
        """Start (or find) the worker and load GX there while the caller gets on with its own start."""

        def warm() -> None:
            with contextlib.suppress(Exception):  # the real call reports any failure
                self.call(warm_up)

        thread = threading.Thread(target=warm, name="gate-worker-warm-up", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        """Hang up; a private worker stops, a shared one stays for the next caller."""
        with self._lock:
            self._stop()

    def _connect(self) -> Connection:
        if self._run_dir is None:
            return self._start_private()
        record_path = self._run_dir / RECORD_NAME
        # One caller at a time looks and, if need be, starts: two commands at once share one worker.
        with locked(self._run_dir / "gate-worker.lock"):
            found = read_record(record_path)
            if found is not None and found.get("fingerprint") == code_fingerprint() and alive(found.get("pid")):
                try:
                    connection = Client(("127.0.0.1", int(found["port"])), authkey=bytes.fromhex(found["key"]))
                except (OSError, EOFError, ValueError, KeyError, AuthenticationError):
                    pass  # gone, or idled out between the look and the call: start another
                else:
                    self._pid, self._connection = int(found["pid"]), connection
                    return connection
            key = secrets.token_bytes(32)
            process, port = _spawn(key, self._idle_seconds, self._run_dir / "gate-worker.log")
            record = {"pid": process.pid, "port": port, "key": key.hex(), "fingerprint": code_fingerprint()}
            write_record(record_path, record)
        # Not this process's child to wait for: it lives on after us, in a session of its own.
        self._pid = process.pid
        self._connection = Client(("127.0.0.1", port), authkey=key)
        return self._connection

    def _start_private(self) -> Connection:
        key = secrets.token_bytes(32)
        process, port = _spawn(key, 0, None)
        self._process, self._pid = process, process.pid
        self._connection = Client(("127.0.0.1", port), authkey=key)
        return self._connection

    def _stop(self) -> int | None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._pid = None
        process, self._process = self._process, None
        if process is None:
            return None
        try:
            # Without its caller a private worker returns from recv() and exits by itself.
            return process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()


def _spawn(key: bytes, idle_seconds: float, log: Path | None) -> tuple[subprocess.Popen[bytes], int]:
    env = dict(os.environ)
    env[KEY_ENV] = key.hex()
    env[IDLE_ENV] = str(idle_seconds)
    # The child resolves imports as this process does (a bench or test may have extended the path).
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    stderr = log.open("ab") if log is not None else None
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "expectations.worker"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            # A shared worker outlives the command that started it: not in its process group, so
            # the terminal's Ctrl-C of that command does not reach it.
            start_new_session=log is not None,
        )
    finally:
        if stderr is not None:
            stderr.close()
    assert process.stdout is not None
    line = process.stdout.readline()
    process.stdout.close()
    if not line.strip().isdigit():
        process.kill()
        raise GateWorkerError(f"the gate worker process did not start (exit code {process.wait()})")
    return process, int(line)


def code_fingerprint() -> str:
    """What a shared worker runs: this interpreter, its import path and our code as it is on disk.
    A worker started before an upgrade or an edit is not used by callers of the new code."""
    digest = hashlib.sha256(sys.executable.encode())
    digest.update(os.pathsep.join(sys.path).encode())
    root = Path(__file__).resolve().parent.parent
    for package in ("expectations", "nightshift"):
        for folder, _, files in sorted(os.walk(root / package)):
            for name in sorted(files):
                if name.endswith(".py"):
                    stat = os.stat(os.path.join(folder, name))
                    digest.update(f"{folder}/{name}:{stat.st_mtime_ns}:{stat.st_size}".encode())
    return digest.hexdigest()[:32]


def shared_worker(home: Path | None = None, idle_seconds: float = 0) -> GateWorker:
    """The process's worker for this state folder, made on first use; hung up at exit.
    idle_seconds > 0 (with a home): shared with other processes, see the module's docstring."""
    key = (home.resolve() if home is not None else None, idle_seconds if home is not None else 0)
    with _shared_lock:
        worker = _shared.get(key)
        if worker is None:
            worker = _shared[key] = GateWorker(*key) if key[0] is not None else GateWorker()
            atexit.register(worker.close)
        return worker


_shared: dict[tuple[Path | None, float], GateWorker] = {}
_shared_lock = threading.Lock()


class _Server:
    """Answers calls, one at a time, from any number of authenticated callers."""

    def __init__(self, listener: Listener, idle_seconds: float) -> None:
        self._listener = listener
        self._idle_seconds = idle_seconds
        self._calls = threading.Lock()
        self._state = threading.Lock()
        self._open = 0
        self._last = time.monotonic()

    def run(self) -> None:
        if self._idle_seconds <= 0:
            # A private worker has one caller; it stops when that caller hangs up.
            with self._listener.accept() as connection:
                self._serve(connection)
            return
        threading.Thread(target=self._stop_when_idle, daemon=True).start()
        while True:
            try:
                connection = self._listener.accept()
            except OSError:  # a caller without the key, or one that hung up at once
                continue
            with self._state:
                self._open += 1
            threading.Thread(target=self._serve_and_close, args=(connection,), daemon=True).start()

    def _serve_and_close(self, connection: Connection) -> None:
        with connection:
            self._serve(connection)
        with self._state:
            self._open -= 1
            self._last = time.monotonic()

    def _serve(self, connection: Connection) -> None:
        while True:
            try:
                function, args = connection.recv()
            except (EOFError, OSError):
                return
            with self._calls:
                try:
                    reply: tuple[str, Any] = ("ok", function(*args))
                except Exception as exc:  # reported to the caller, which raises it; the worker serves on
                    reply = ("error", str(exc) or type(exc).__name__)
            with self._state:
                self._last = time.monotonic()
            try:
                connection.send(reply)
            except OSError:  # the caller died while it waited
                return

    def _stop_when_idle(self) -> None:
        while True:
            time.sleep(min(1.0, self._idle_seconds))
            with self._state:
                idle = self._open == 0 and time.monotonic() - self._last >= self._idle_seconds
            if idle:
                # A caller finding the record now gets a refused connection and starts another.
                os._exit(0)


def main() -> None:
    key = bytes.fromhex(os.environ.pop(KEY_ENV))
    idle_seconds = float(os.environ.pop(IDLE_ENV, "0") or 0)
    with Listener(("127.0.0.1", 0), authkey=key) as listener:
        sys.stdout.write(f"{listener.address[1]}\n")
        sys.stdout.flush()
        # stdout carried only the port: whatever a library prints from now on goes to stderr.
        os.dup2(2, 1)
        _Server(listener, idle_seconds).run()


if __name__ == "__main__":
    main()
