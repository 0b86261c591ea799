"""The usage store: one DuckDB file behind short leases, with a journal in front (DESIGN §3).

    Store(home)                      the folder holding usage.duckdb and journal/
    store.journal()                  this process's JournalWriter (append records, never blocks on DuckDB)
    store.flush()                    ingest sealed journal segments, exactly once
    store.read() / store.write()     short read / write leases (context managers)
    store.backlog()                  what still waits in the journal

docs/developers/storage.md explains the design and its invariants.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

from ..paths import DB_FILENAME, JOURNAL_DIRNAME, resolve_home
from . import rollup
from .flush import FlushResult, flush
from .journal import Backlog, JournalWriter, backlog
from .lease import read_lease, write_lease
from .migrations import migrate
from .schema import COLUMN_NAMES, COLUMNS, UsageRecord

__all__ = ["Store", "UsageRecord", "FlushResult", "Backlog", "COLUMNS", "COLUMN_NAMES"]

_writers: dict[str, JournalWriter] = {}
_writers_lock = threading.Lock()


class Store:
    """Paths and operations of one llmlab home folder."""

    def __init__(self, home: str | os.PathLike | None = None, *, lock_timeout: float | None = None,
                 fsync_interval: float = 0.2):
        p = Path(home).expanduser() if home is not None else None
        if p is not None and p.suffix == ".duckdb":
            self.home = p.parent
            self.db_path = p
        else:
            self.home = resolve_home(p)
            self.db_path = self.home / DB_FILENAME
        self.journal_dir = self.home / JOURNAL_DIRNAME
        self.lock_timeout = lock_timeout
        self.fsync_interval = fsync_interval
        self._migrated = False

    def __repr__(self) -> str:
        return f"Store({str(self.home)!r})"

    def journal(self) -> JournalWriter:
        """This process's writer for this store (one per process and journal folder)."""
        key = f"{os.getpid()}:{self.journal_dir.resolve() if self.journal_dir.exists() else self.journal_dir}"
        with _writers_lock:
            w = _writers.get(key)
            if w is None:
                w = _writers[key] = JournalWriter(self.journal_dir, fsync_interval=self.fsync_interval)
            return w

    def record(self, record: UsageRecord) -> None:
        self.journal().append(record)

    def migrate(self) -> list[str]:
        with write_lease(self.db_path, timeout=self.lock_timeout) as con:
            ran = migrate(con)
        self._migrated = True
        return ran

    def ensure(self) -> None:
        """Create or upgrade the database once per Store object."""
        if not self._migrated:
            if self.db_path.exists():
                from .migrations import MIGRATIONS

                with read_lease(self.db_path, timeout=self.lock_timeout) as con:
                    try:
                        done = {r[0] for r in con.execute("SELECT name FROM _llmlab_migrations").fetchall()}
                    except Exception:
                        done = set()
                if {n for n, _ in MIGRATIONS} <= done:
                    self._migrated = True
                    return
            self.migrate()

    def flush(self, *, seal_own: bool = True) -> FlushResult:
        writer = None
        if seal_own:
            with _writers_lock:
                writer = _writers.get(f"{os.getpid()}:{self.journal_dir.resolve() if self.journal_dir.exists() else self.journal_dir}")
        self._migrated = True
        return flush(self.db_path, self.journal_dir, writer=writer, timeout=self.lock_timeout)

    def read(self):
        self.ensure()
        return read_lease(self.db_path, timeout=self.lock_timeout)

    @contextlib.contextmanager
    def write(self):
        """A short write lease. If the block changes ``requests`` without keeping the rollup in
        step (``rollup.add`` / ``rollup.touch``), the helpers read ``requests`` until the next
        flush rebuilds the rollup (llmlab/store/rollup.py)."""
        self.ensure()
        with write_lease(self.db_path, timeout=self.lock_timeout) as con:
            rollup.begin_write(con)
            yield con
            rollup.end_write(con)

    def backlog(self) -> Backlog:
        return backlog(self.journal_dir)
