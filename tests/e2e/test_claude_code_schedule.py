"""The server's scheduled Claude Code import, inside pytest-jupyter's real server: the fixture
corpus arrives in the store, appended lines arrive on a later run, a corrupt line is counted and
not fatal, and a store held by another process is waited out. ``api/health`` shows each run."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from traitlets.config import Config

from pytest_jupyter.jupyter_server import *  # noqa: F401,F403 - the jp_* fixtures, this module only

import claude_fixture as fx
from llmlab.store import Store

HOLD_DB = """
import duckdb, sys, time
for _ in range(300):                       # the server's own short leases come and go
    try:
        con = duckdb.connect(sys.argv[1])  # read-write: nobody else can open the file now
        break
    except duckdb.IOException:
        time.sleep(0.05)
print("holding", flush=True)
sys.stdin.read()                           # until the test closes our stdin
con.close()
"""


@pytest.fixture
def corpus(tmp_path):
    return fx.write(tmp_path / "claude")


@pytest.fixture
def jp_server_config(llmlab_home, corpus):
    return Config({"ServerApp": {"jpserver_extensions": {"llmlab": True}},
                   "LLMLabApp": {"claude_code_import_interval": 0.2,
                                 "claude_code_paths": [str(corpus)], "lock_timeout": 0.3}})


def health(loop, jp_fetch) -> dict:
    r = loop.run_until_complete(jp_fetch("llmlab", "api", "health"))
    return json.loads(r.body)["claude_code_import"]


def wait_for(loop, jp_fetch, store, ready, what: str, timeout: float = 60.0) -> tuple[dict, tuple]:
    """Poll api/health until ``ready(state)``, then read the store's totals. The state is
    updated after a run's rows are committed, so the totals include that run. The server's
    loop runs while we fetch."""
    deadline = time.monotonic() + timeout
    while True:
        state = health(loop, jp_fetch)
        if ready(state):
            return state, totals(store)
        if time.monotonic() > deadline:
            raise AssertionError(f"scheduled import never reached: {what}; last state {state}")
        time.sleep(0.1)


def totals(store: Store) -> tuple:
    if not store.db_path.exists():
        return (0, None)
    with store.read() as con:
        return con.execute("SELECT count(*), sum(total_tokens) FROM requests "
                           "WHERE source = 'claude-code'").fetchone()


def test_scheduled_import_follows_the_logs(jp_asyncio_loop, jp_fetch, jp_serverapp, llmlab_home,
                                           corpus):
    loop, store = jp_asyncio_loop, Store(llmlab_home)
    first, got = wait_for(loop, jp_fetch, store, lambda s: s["runs"] and s["status"] == "ok",
                          "the corpus")
    assert got == (fx.ROWS, fx.TOTAL_TOKENS)
    assert first["status"] == "ok" and first["last_error"] is None
    assert first["dropped_lines_total"] == sum(fx.DROPPED.values())
    assert first["paths"] == [str(corpus)] and first["interval_s"] == 0.2

    # Claude Code finishes its cut-off line, logs a corrupt line and a new message.
    sess_a = corpus / "projects" / "-home-u-alpha" / "sess-a.jsonl"
    new = fx.line("2026-10-01T12:50:00.000Z", "m9", fx.HAIKU,
                  {"input_tokens": 1, "output_tokens": 2}, req="r9")
    corrupt = fx.line("2026-10-01T12:51:00.000Z", "m10", fx.HAIKU,
                      {"input_tokens": 1, "output_tokens": 1}, req="r10")[:-12]
    runs = first["runs"]
    with open(sess_a, "a") as fh:
        fh.write(fx.CUT_OFF[40:] + "\n" + corrupt + "\n" + new + "\n")
    later, got = wait_for(loop, jp_fetch, store,
                          lambda s: s["runs"] > runs and s["last_files_read"], "the new lines")
    assert got == (fx.ROWS + 2, fx.TOTAL_TOKENS + 14 + 3)               # m8 and m9
    assert later["status"] == "ok" and later["runs"] > runs
    assert later["last_files_read"] == 1
    assert later["dropped_lines_total"] == sum(fx.DROPPED.values()) + 1  # the corrupt line
    # And it keeps running after the corrupt line, reading nothing more.
    runs = later["runs"]
    state, got = wait_for(loop, jp_fetch, store, lambda s: s["runs"] > runs + 1, "more runs")
    assert state["status"] == "ok" and state["last_files_read"] == 0
    assert got == (fx.ROWS + 2, fx.TOTAL_TOKENS + 17)


def test_a_locked_store_is_retried_next_interval(jp_asyncio_loop, jp_fetch, jp_serverapp,
                                                 llmlab_home, corpus):
    loop, store = jp_asyncio_loop, Store(llmlab_home)
    wait_for(loop, jp_fetch, store, lambda s: s["runs"] and s["status"] == "ok", "the corpus")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_DB, str(store.db_path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with open(corpus / "projects" / "-home-u-beta" / "sess-e.jsonl", "w") as fh:
            fh.write(fx.line("2026-10-04T10:00:00.000Z", "e1", fx.HAIKU,
                             {"input_tokens": 5, "output_tokens": 5}, req="re1",
                             session="sess-e") + "\n")
        deadline = time.monotonic() + 60      # the store cannot be read now: health only
        while (state := health(loop, jp_fetch))["status"] != "locked":
            assert time.monotonic() < deadline, f"never locked: {state}"
            time.sleep(0.1)
        assert state["locked_by_pid"] == holder.pid and str(store.db_path) in state["last_error"]
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    done, got = wait_for(loop, jp_fetch, store, lambda s: s["status"] == "ok", "the release")
    assert got == (fx.ROWS + 1, fx.TOTAL_TOKENS + 10)
    assert done["status"] == "ok" and done["last_error"] is None and done["locked_by_pid"] is None


class TestOffByDefault:
    @pytest.fixture
    def jp_server_config(self, llmlab_home):
        return Config({"ServerApp": {"jpserver_extensions": {"llmlab": True}}})

    def test_no_import_runs_and_health_says_off(self, jp_asyncio_loop, jp_fetch, jp_serverapp):
        assert "llmlab_claude_code_import" not in jp_serverapp.web_app.settings
        assert health(jp_asyncio_loop, jp_fetch) == {"status": "off"}
