"""Short leases on usage.duckdb: attach, do one operation, detach.

DuckDB lets one process open a file read-write, or many open it read-only, never both. Jupyter is
many processes, so nobody keeps the file open: every operation takes a lease, and a lease that
meets another process's lock retries with jittered backoff up to ``timeout`` seconds, then raises
:class:`StoreLockedError` naming the file and the holder's PID.

Two details keep leases cheap and fair:

- A lease ATTACHes the file to one in-memory DuckDB instance kept per process and DETACHes it
  afterwards. Creating a DuckDB instance costs ~25 ms (its built-in catalog); attaching a file
  costs a few. DETACH closes the file and releases its OS lock exactly as closing a connection.
- Writers take turns through ``usage.duckdb.gate`` (an ``flock``). A writer holds the gate while
  it waits for the file; readers pass the gate only while no writer holds it. Without this,
  readers in tight loops (dashboards) always hold a shared lock and starve the flusher. A writer
  that cannot get the file within ``WRITER_TURN_S`` (a foreign process holds it) lets readers
  through for a moment before it tries again. The gate is advisory: processes that are not
  llmlab ignore it and meet DuckDB's own lock instead.

Within one process DuckDB refuses a read-only and a read-write attachment of the same file at the
same time, so leases in one process are serialised by a process-wide lock per file.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import random
import re
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import duckdb

from ..errors import StoreError, StoreLockedError

try:
    import fcntl
except ImportError:  # pragma: no cover - not Linux/macOS: no gate, DuckDB's lock still holds
    fcntl = None

log = logging.getLogger("llmlab.store")

DEFAULT_LOCK_TIMEOUT_S = float(os.environ.get("LLMLAB_LOCK_TIMEOUT", "10"))
# How long a writer keeps readers waiting at the gate while it cannot get the file itself.
WRITER_TURN_S = 1.0
GATE_SUFFIX = ".gate"

# Only what the wheel bundles: nothing is downloaded or autoloaded at run time (DESIGN §3).
_DUCKDB_CONFIG = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}
_PID_RE = re.compile(r"PID (\d+)")
_process_locks: dict[str, threading.RLock] = {}
_process_locks_guard = threading.Lock()
_host: duckdb.DuckDBPyConnection | None = None
_host_pid: int | None = None
_host_threads: int | None = None   # None: DuckDB's default (one per core)
_host_guard = threading.Lock()
_aliases = itertools.count()
# The alias each open lease attached its file under (DuckDB connections take no attributes).
_lease_aliases: "weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, str]" = weakref.WeakKeyDictionary()


def _process_lock(path: Path) -> threading.RLock:
    key = str(path.resolve())
    with _process_locks_guard:
        return _process_locks.setdefault(key, threading.RLock())


def _is_lock_conflict(exc: duckdb.Error) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


def holder_pid(exc: BaseException) -> int | None:
    m = _PID_RE.search(str(exc))
    return int(m.group(1)) if m else None


def _session() -> duckdb.DuckDBPyConnection:
    """A new session on this process's in-memory host instance (made once per process)."""
    global _host, _host_pid
    with _host_guard:
        if _host is None or _host_pid != os.getpid():  # a forked child never reuses the parent's
            config = dict(_DUCKDB_CONFIG)
            if _host_threads is not None:
                config["threads"] = _host_threads
            _host = duckdb.connect(":memory:", config=config)
            _host_pid = os.getpid()
        return _host.cursor()


def set_host_threads(threads: int | None) -> None:
    """How many threads this process's DuckDB runs leases on (None: one per core), now and for
    a host made later. The server sets 1 (proxy/background.py)."""
    global _host_threads
    with _host_guard:
        _host_threads = threads
        if _host is not None and _host_pid == os.getpid():
            _host.execute("RESET threads" if threads is None else f"SET threads = {int(threads)}")


def _reset_host() -> None:
    """Drop the host instance, closing every file attached to it (last resort after a failure)."""
    global _host
    with _host_guard:
        if _host is not None and _host_pid == os.getpid():
            with contextlib.suppress(Exception):
                _host.close()
        _host = None


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _attach(path: Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """One attempt: a session whose default database is ``path``. Raises duckdb errors."""
    con = _session()
    alias = f"llmlab_store_{next(_aliases)}"
    try:
        con.execute(f"ATTACH {_sql_text(str(path))} AS {alias}" + (" (READ_ONLY)" if read_only else ""))
    except BaseException:
        con.close()
        raise
    con.execute(f"USE {alias}")
    con.execute("SET TimeZone = 'UTC'")
    _lease_aliases[con] = alias
    return con


def release(con: duckdb.DuckDBPyConnection) -> None:
    """End a lease: roll back what was left open, detach the file (releasing its lock), close."""
    alias = _lease_aliases.pop(con, None)
    with contextlib.suppress(duckdb.Error):
        con.execute("ROLLBACK")  # only succeeds when a transaction was left open
    try:
        con.execute("USE memory")
        if alias:
            con.execute(f"DETACH DATABASE IF EXISTS {alias}")
    except duckdb.Error as exc:
        # Never leave the file attached (that would lock every other process out): drop the host.
        log.warning("could not detach the store cleanly (%s); resetting DuckDB", exc)
        _reset_host()
    finally:
        with contextlib.suppress(duckdb.Error):
            con.close()


class _Gate:
    """The writers' turn: ``flock`` on ``<db>.gate`` holding the PID of the writer whose turn it is."""

    def __init__(self, db_path: Path):
        self.path = db_path.with_name(db_path.name + GATE_SUFFIX)
        self.fd: int | None = None
        if fcntl is None:
            return
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            try:  # a store someone else owns: read-only is enough to see whose turn it is
                self.fd = os.open(self.path, os.O_RDONLY)
            except OSError:
                self.fd = None

    def try_take(self) -> bool:
        if self.fd is None:
            return True
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, str(os.getpid()).encode(), 0)
        return True

    def give_back(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def open_to_readers(self) -> bool:
        """Whether no writer holds the turn right now."""
        if self.fd is None:
            return True
        try:
            fcntl.flock(self.fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        return True

    def holder(self) -> int | None:
        if self.fd is None:
            return None
        try:
            return int(os.pread(self.fd, 32, 0).decode().strip() or 0) or None
        except (OSError, ValueError):
            return None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # also releases our flock, if held
            self.fd = None


class _Backoff:
    def __init__(self, timeout: float | None):
        self.timeout = DEFAULT_LOCK_TIMEOUT_S if timeout is None else timeout
        self.start = time.monotonic()
        self.delay = 0.005

    @property
    def waited(self) -> float:
        return time.monotonic() - self.start

    def expired(self) -> bool:
        return self.waited >= self.timeout

    def sleep(self, cap: float | None = None) -> None:
        left = max(0.0, self.timeout - self.waited)
        time.sleep(min(self.delay * (0.5 + random.random()), left, cap if cap is not None else left))
        self.delay = min(self.delay * 2, 0.25)


def _attach_with_retry(path: Path, *, read_only: bool, backoff: _Backoff,
                       until: float | None = None) -> tuple[duckdb.DuckDBPyConnection | None, Exception | None]:
    """Try to attach until it works, the backoff expires or ``until`` (monotonic) passes."""
    last: Exception | None = None
    while True:
        try:
            return _attach(path, read_only=read_only), None
        except duckdb.IOException as exc:
            if not _is_lock_conflict(exc):
                raise StoreError(f"cannot open {path}: {exc}") from exc
            last = exc
        except duckdb.Error as exc:
            raise StoreError(f"cannot open {path}: {exc}") from exc
        if backoff.expired() or (until is not None and time.monotonic() >= until):
            return None, last
        backoff.sleep()


def _last_try(path: Path, *, read_only: bool, backoff: _Backoff, gate: _Gate, detail: str = ""):
    """Out of time: one attempt past the gate, so the error names whoever holds the *file*
    (a writer may have kept us at the gate while it waited for a foreign holder itself)."""
    con, last = _attach_with_retry(path, read_only=read_only, backoff=backoff, until=time.monotonic())
    if con is not None:
        return con
    pid = holder_pid(last) if last is not None else None
    raise StoreLockedError(path, pid or gate.holder(), backoff.waited, detail) from last


def _connect_reader(path: Path, gate: _Gate, backoff: _Backoff) -> duckdb.DuckDBPyConnection:
    while True:
        if gate.open_to_readers():
            con, _ = _attach_with_retry(path, read_only=True, backoff=backoff,
                                        until=time.monotonic())  # one attempt
            if con is not None:
                return con
        if backoff.expired():
            return _last_try(path, read_only=True, backoff=backoff, gate=gate)
        backoff.sleep()


def _connect_writer(path: Path, gate: _Gate, backoff: _Backoff) -> duckdb.DuckDBPyConnection:
    last: Exception | None = None
    while True:
        if gate.try_take():
            try:
                con, last = _attach_with_retry(path, read_only=False, backoff=backoff,
                                               until=time.monotonic() + WRITER_TURN_S)
            except BaseException:
                gate.give_back()
                raise
            if con is not None:
                return con  # the gate stays ours until the lease ends
            gate.give_back()
            if backoff.expired():
                raise StoreLockedError(path, holder_pid(last), backoff.waited) from last
            time.sleep(min(0.2, max(0.0, backoff.timeout - backoff.waited)))  # readers' window
            continue
        if backoff.expired():
            # Another llmlab writer kept the turn all along; the file may be held by a third
            # process. The turn is only about fairness: if the file is free now, take it.
            return _last_try(path, read_only=False, backoff=backoff, gate=gate)
        backoff.sleep()


def connect(path: Path, *, read_only: bool, timeout: float | None = None) -> duckdb.DuckDBPyConnection:
    """Open ``path`` for one operation (end it with :func:`release`), retrying lock conflicts.

    Without the writers' gate: leases (which take it) are what llmlab itself uses.
    """
    backoff = _Backoff(timeout)
    con, last = _attach_with_retry(Path(path), read_only=read_only, backoff=backoff)
    if con is None:
        raise StoreLockedError(path, holder_pid(last), backoff.waited) from last
    return con


@contextlib.contextmanager
def write_lease(path: Path, *, timeout: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write session for one operation; the file is released on exit."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _process_lock(path):
        gate = _Gate(path)
        try:
            con = _connect_writer(path, gate, _Backoff(timeout))
            try:
                yield con
            finally:
                release(con)
        finally:
            gate.close()


@contextlib.contextmanager
def read_lease(path: Path, *, timeout: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only session for one operation; many processes may hold one at once."""
    path = Path(path)
    with _process_lock(path):
        if not path.exists():
            raise StoreError(f"{path} does not exist; run a flush or `llmlab demo` to create it")
        gate = _Gate(path)
        try:
            con = _connect_reader(path, gate, _Backoff(timeout))
            try:
                yield con
            finally:
                release(con)
        finally:
            gate.close()
