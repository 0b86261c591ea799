"""proxy/background.py: the server's bulk threads yield the CPU; DuckDB runs on one thread."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from llmlab import cpu_priority
from llmlab.proxy import background
from llmlab.proxy.flusher import BackgroundFlusher
from llmlab.store import Store, lease


def _threads() -> int:
    con = lease._session()
    try:
        return int(con.execute("SELECT current_setting('threads')").fetchone()[0])
    finally:
        con.close()


@pytest.fixture
def enabled():
    background.enable()
    yield
    background.disable()


def test_enable_runs_duckdb_leases_on_one_thread_and_disable_restores_the_default(enabled):
    assert _threads() == 1
    background.disable()
    assert _threads() == (os.cpu_count() or 1)


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread priorities are Linux's")
def test_the_flusher_thread_runs_at_the_lowest_priority(tmp_path, enabled):
    store = Store(tmp_path)
    flusher = BackgroundFlusher(store, interval=30)
    flusher.start()
    try:
        tid = None
        for _ in range(200):
            tid = flusher._thread.native_id
            if tid and os.getpriority(os.PRIO_PROCESS, tid) == cpu_priority.LOWEST:
                break
            threading.Event().wait(0.01)
        assert os.getpriority(os.PRIO_PROCESS, tid) == cpu_priority.LOWEST
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) != cpu_priority.LOWEST
    finally:
        flusher.stop()


def test_nothing_changes_unless_enabled(tmp_path):
    background.disable()
    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    background.lower_this_thread()
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before
