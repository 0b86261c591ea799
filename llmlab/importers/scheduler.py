"""The server's scheduled Claude Code import: new log lines into the store every few seconds.

Turned on by ``LLMLabApp.claude_code_import_interval`` (off by default). One background thread
runs :func:`import_claude_code` (so never on the event loop, and never two imports at once), then
waits ``interval`` seconds after it ends and runs again: a slow cold import delays the next run
instead of piling runs up. An import is incremental, so a run with nothing new costs a ``stat``
per log file and one short read lease.

Nothing stops the thread but :meth:`ClaudeCodeScheduler.stop`: a locked store (someone's
``duckdb.connect()`` in a notebook, a long ``llmlab import`` in a terminal) is expected and simply
retried next interval; any other error is logged and retried too. Every run's outcome is in
:attr:`ClaudeCodeScheduler.state`, which ``api/health`` shows.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime, timezone

from ..errors import LLMLabError, StoreLockedError
from ..store import Store

# Repeat the same error in the log at most this often (it stays in ``state`` meanwhile).
WARN_EVERY_S = 300.0


class ClaudeCodeScheduler:
    """Imports Claude Code's logs into ``store`` every ``interval`` seconds in its own thread.

    ``paths``: Claude config folders or ``projects/`` folders; ``None`` or empty: where Claude
    Code writes (``CLAUDE_CONFIG_DIR``, ``$XDG_CONFIG_HOME/claude``, ``~/.claude``).
    ``pricebook``: the server's prices (its overrides included); ``None``: LiteLLM's table.
    """

    def __init__(self, store: Store, *, interval: float,
                 paths: list[str | os.PathLike] | None = None,
                 pricebook=None, log: logging.Logger | None = None):
        if interval <= 0:
            raise ValueError("interval must be positive (0 means: do not schedule imports)")
        self.store = store
        self.interval = interval
        self.paths = [str(p) for p in paths] if paths else None
        self.pricebook = pricebook
        self.log = log or logging.getLogger("llmlab.importers")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_warned: dict[str, float] = {}
        self.state = {
            "status": "starting", "interval_s": interval,
            "paths": self.paths or "default (CLAUDE_CONFIG_DIR, ~/.config/claude, ~/.claude)",
            "runs": 0, "last_run_at": None, "last_run_s": None, "last_files_read": 0,
            "last_rows_written": 0, "last_dropped_lines": 0, "rows_written_total": 0,
            "dropped_lines_total": 0, "last_error": None, "locked_by_pid": None,
        }

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="llmlab-claude-code-import",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from ..proxy import background

        background.lower_this_thread()   # bulk work: the server's event loop comes first
        while not self._stop.is_set():
            self.import_once()
            if self._stop.wait(self.interval):
                break

    def import_once(self) -> bool:
        """One import; False if it failed (the next interval tries again)."""
        from . import import_claude_code

        started = datetime.now(timezone.utc).isoformat()
        try:
            result = import_claude_code(self.store, self.paths, progress=False, workers=1,
                                        pricebook=self.pricebook)
        except StoreLockedError as exc:
            self.state.update(status="locked", locked_by_pid=exc.pid, last_error=str(exc),
                              last_run_at=started, runs=self.state["runs"] + 1)
            self._warn("locked", "llmlab: the scheduled Claude Code import waits for %s (locked by "
                       "%s); retrying every %gs", self.store.db_path,
                       f"process {exc.pid}" if exc.pid else "another process", self.interval)
            return False
        except Exception as exc:  # noqa: BLE001 - the thread must survive any import error
            detail = f"{exc.__class__.__name__}: {exc}"
            self.state.update(status="error", locked_by_pid=None, last_error=detail,
                              last_run_at=started, runs=self.state["runs"] + 1)
            if isinstance(exc, LLMLabError):
                self._warn(detail, "llmlab: the scheduled Claude Code import failed (retrying "
                           "every %gs): %s", self.interval, detail)
            elif self._due(detail):
                self.log.exception("llmlab: the scheduled Claude Code import failed unexpectedly "
                                   "(retrying every %gs)", self.interval)
            return False
        if self.state["status"] in ("locked", "error"):
            self.log.info("llmlab: the scheduled Claude Code import runs again")
            self._last_warned.clear()
        dropped = result.dropped_lines
        self.state.update(
            status="ok", last_error=None, locked_by_pid=None, last_run_at=started,
            last_run_s=round(result.seconds, 3), runs=self.state["runs"] + 1,
            last_files_read=result.files_read, last_rows_written=result.rows_written,
            last_dropped_lines=dropped,
            rows_written_total=self.state["rows_written_total"] + result.rows_written,
            dropped_lines_total=self.state["dropped_lines_total"] + dropped)
        if result.files_read:
            self.log.info("llmlab: scheduled Claude Code import: %s", result.summary())
        return True

    def _due(self, key: str) -> bool:
        now = time.monotonic()
        if now - self._last_warned.get(key, -WARN_EVERY_S) < WARN_EVERY_S:
            return False
        self._last_warned[key] = now
        return True

    def _warn(self, key: str, msg: str, *args) -> None:
        if self._due(key):
            self.log.warning(msg, *args)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop scheduling; waits up to ``timeout`` s for a running import to finish. An import
        still running after that is abandoned with the process, which is safe: each of its
        writes is one transaction with the files' read positions."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                self.log.warning("llmlab: the scheduled Claude Code import was still running at "
                                 "shutdown; the next one resumes where it stopped")
        self.state["status"] = "stopped"
