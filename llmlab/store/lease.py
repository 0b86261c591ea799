"""Short leases on usage.duckdb: open, do one operation, close.

DuckDB lets one process open a file read-write, or many open it read-only, never both. Jupyter is
many processes, so nobody keeps the file open: every operation takes a lease, and a lease that
meets another process's lock retries with jittered backoff up to ``timeout`` seconds, then raises
:class:`StoreLockedError` naming the file and the holder's PID.

Within one process DuckDB refuses a read-only and a read-write connection to the same file at the
same time, so leases in one process are serialised by a process-wide lock per file.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

from ..errors import StoreError, StoreLockedError

DEFAULT_LOCK_TIMEOUT_S = float(os.environ.get("LLMLAB_LOCK_TIMEOUT", "10"))

# Only what the wheel bundles: nothing is downloaded or autoloaded at run time (DESIGN §3).
_DUCKDB_CONFIG = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}
_PID_RE = re.compile(r"PID (\d+)")
_process_locks: dict[str, threading.RLock] = {}
_process_locks_guard = threading.Lock()


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


def connect(path: Path, *, read_only: bool, timeout: float | None = None) -> duckdb.DuckDBPyConnection:
    """Open ``path``, retrying lock conflicts with jittered exponential backoff."""
    timeout = DEFAULT_LOCK_TIMEOUT_S if timeout is None else timeout
    start = time.monotonic()
    delay = 0.005
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only, config=dict(_DUCKDB_CONFIG))
            con.execute("SET TimeZone = 'UTC'")
            return con
        except duckdb.IOException as exc:
            if not _is_lock_conflict(exc):
                raise StoreError(f"cannot open {path}: {exc}") from exc
            waited = time.monotonic() - start
            if waited >= timeout:
                raise StoreLockedError(path, holder_pid(exc), waited) from exc
            time.sleep(min(delay * (0.5 + random.random()), max(0.0, timeout - waited)))
            delay = min(delay * 2, 0.25)


@contextlib.contextmanager
def write_lease(path: Path, *, timeout: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection for one operation; closed (and the file released) on exit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _process_lock(path):
        con = connect(path, read_only=False, timeout=timeout)
        try:
            yield con
        finally:
            con.close()


@contextlib.contextmanager
def read_lease(path: Path, *, timeout: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection for one operation; many processes may hold one at once."""
    with _process_lock(path):
        con = connect(path, read_only=True, timeout=timeout)
        try:
            yield con
        finally:
            con.close()
