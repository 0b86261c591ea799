"""The server's flusher: a background thread that moves journaled records into usage.duckdb.

Every ``interval`` seconds, if anything waits in the journal, it seals this process's segment and
runs :meth:`Store.flush` under a short write lease. When another process holds the file past the
lease timeout (someone's ``duckdb.connect()`` in a notebook), it says so once in the log with the
backlog, keeps serving (the request path never touches DuckDB) and tries again next interval;
the records arrive when the file is released. ``stop()`` runs a last flush.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone

from ..errors import StoreLockedError
from ..store import Store
from ..store.journal import waiting_records
from . import background

# Repeat the "still locked" warning at most this often.
WARN_EVERY_S = 60.0


class BackgroundFlusher:
    def __init__(self, store: Store, *, interval: float, log: logging.Logger | None = None):
        self.store = store
        self.interval = interval
        self.log = log or logging.getLogger("llmlab.proxy")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._flush_lock = threading.Lock()
        self._last_warned = 0.0
        self.state = {
            "status": "starting", "last_flush_at": None, "last_error": None, "locked_by_pid": None,
            "records_ingested": 0, "flushes": 0,
        }

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="llmlab-flusher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        background.lower_this_thread()
        # The flush path's pyarrow import takes seconds of GIL; paid here, at startup, it does not
        # stall the proxied calls in flight during the first flush under load.
        import pyarrow.compute  # noqa: F401

        from . import heap

        self.flush_once(force=True)   # ingest what dead processes left behind
        heap.settle()   # what the import and the first flush loaded stays for good
        while not self._stop.wait(self.interval):
            self.flush_once()

    def flush_once(self, *, force: bool = False) -> bool:
        """One attempt; False if the store could not be written (records stay journaled)."""
        with self._flush_lock:
            if not force and self.store.backlog().segments == 0:
                return True
            try:
                result = self.store.flush()
            except StoreLockedError as exc:
                self._locked(exc)
                return False
            except Exception as exc:  # noqa: BLE001 - the thread must survive any store error
                self.state.update(status="error", last_error=f"{exc.__class__.__name__}: {exc}")
                self.log.error("llmlab: flushing the journal into %s failed; records wait in the "
                               "journal: %s", self.store.db_path, exc)
                return False
            if self.state["status"] == "locked":
                self.log.warning("llmlab: %s is writable again; ingested %d waiting records",
                                 self.store.db_path, result.inserted)
            self.state.update(status="ok", last_error=None, locked_by_pid=None,
                              last_flush_at=datetime.now(timezone.utc).isoformat(),
                              records_ingested=self.state["records_ingested"] + result.inserted,
                              flushes=self.state["flushes"] + 1)
            return True

    def _locked(self, exc: StoreLockedError) -> None:
        self.state.update(status="locked", locked_by_pid=exc.pid, last_error=str(exc))
        now = time.monotonic()
        if now - self._last_warned < WARN_EVERY_S:
            return
        self._last_warned = now
        backlog = self.store.backlog()
        holder = f"process {exc.pid}" if exc.pid else "another process"
        self.log.warning(
            "llmlab: %s is locked by %s; %d records wait in the journal (%d segments, %d bytes, "
            "oldest %.0fs) and will be ingested when it is released. Retrying every %gs. "
            "The proxy keeps serving meanwhile.",
            self.store.db_path, holder, waiting_records(self.store.journal_dir), backlog.segments,
            backlog.bytes, backlog.oldest_age_s or 0.0, self.interval)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread and flush one last time."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.flush_once(force=False)
