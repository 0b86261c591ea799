"""Claude Code log import: counting rules, pricing, dedup, against totals worked out by hand."""

from __future__ import annotations

import sys
from decimal import Decimal

import pytest

import claude_fixture as fx
from llmlab.errors import ConfigError
from llmlab.importers import import_claude_code
from llmlab.importers.claude_lines import keep_best, parse_line
from llmlab.importers.claude_paths import config_dirs, log_files, session_parts
from llmlab.pricing import PriceBook, Usage


@pytest.fixture
def corpus(tmp_path):
    return fx.write(tmp_path / "claude")


@pytest.fixture
def imported(store, corpus):
    result = import_claude_code(store, [corpus])
    return store, result


def _one(store, sql, params=None):
    with store.read() as con:
        return con.execute(sql, params or []).fetchone()


def test_totals_match_the_hand_count(imported):
    store, result = imported
    assert result.rows_written - result.replays_merged == fx.ROWS
    assert result.entries == fx.ENTRIES
    assert dict(result.dropped) == fx.DROPPED
    assert result.replays_merged == 1
    rows, inp, out, cw, cr, total, cost = _one(store, """
        SELECT count(*), sum(input_tokens), sum(output_tokens), sum(cache_write_tokens),
               sum(cache_read_tokens), sum(total_tokens), sum(cost_usd)
        FROM requests WHERE source = 'claude-code'""")
    assert (rows, inp, out, cw, cr, total) == (fx.ROWS, fx.INPUT, fx.OUTPUT, fx.CACHE_WRITE,
                                               fx.CACHE_READ, fx.TOTAL_TOKENS)
    assert cost == Decimal(str(fx.COST_AUTO))
    calculated, recorded = _one(store, "SELECT sum(calculated_cost_usd), sum(recorded_cost_usd) "
                                       "FROM requests")
    assert calculated == Decimal(str(fx.COST_CALCULATE))
    assert recorded == Decimal(str(fx.COST_DISPLAY))


def test_each_message_keeps_the_row_ccusage_keeps(imported):
    store, _ = imported
    with store.read() as con:
        rows = {r[0]: r[1:] for r in con.execute("""
            SELECT message_id, output_tokens, session_id, project, is_sidechain, model,
                   started_at, cache_write_5m_tokens, cache_write_1h_tokens, pricing_source,
                   cwd, git_branch, agent_version, provider_request_id, error_type
            FROM requests""").fetchall()}
    assert set(rows) == {"m1", "m2", "m3", "m4", "m6", "m7", "s1", "b1", "b2", "c1"}
    # m1: the last content-block line (more output tokens), not sess-b's shorter copy.
    assert rows["m1"][:2] == (20, "sess-a") and rows["m1"][5].isoformat() == "2026-10-01T10:00:00+00:00"
    assert rows["m1"][6:8] == (200, 0)
    # c1: the main-chain line wins over the sidechain line with more tokens.
    assert rows["c1"][:4] == (10, "sess-d", "-home-u-beta", False)
    # m3: the /btw replay merged; the 1-hour cache write kept apart.
    assert rows["m3"][3] is False and rows["m3"][6:8] == (0, 10_000)
    # The subagent's message belongs to its parent session.
    assert rows["s1"][1:4] == ("sess-a", "-home-u-alpha", True)
    assert rows["m7"][4] == "claude-opus-4-6-fast"
    assert rows["m4"][4] == "<synthetic>" and rows["m4"][8] == "synthetic" and rows["m4"][13] == "api_error"
    assert rows["m6"][8] == "log:costUSD"
    assert rows["m2"][11] == "1.0.3" and rows["m2"][12] is None
    assert rows["b1"][9:13] == ("/home/u/beta", "main", "2.1.3", "rb1x")


def test_request_ids_follow_the_dedup_key(imported):
    store, _ = imported
    with store.read() as con:
        ids = {r[0] for r in con.execute("SELECT request_id FROM requests").fetchall()}
    assert "claude-code:m1:req:r1" in ids
    assert "claude-code:m2:session:sess-a" in ids        # no requestId: message and session
    assert not any(":r3b" in i for i in ids)              # the replay left no row


def test_reimport_and_rescan_change_nothing(imported, corpus):
    store, _ = imported
    before = _one(store, "SELECT count(*), sum(total_tokens), sum(cost_usd) FROM requests")
    again = import_claude_code(store, [corpus])
    assert again.files_read == 0 and again.rows_written == 0 and again.files_unchanged == 5
    rescan = import_claude_code(store, [corpus], rescan=True)
    assert rescan.files_read == 5
    assert _one(store, "SELECT count(*), sum(total_tokens), sum(cost_usd) FROM requests") == before


def test_pricing_follows_ccusage_rules():
    book = PriceBook()
    # Sonnet 4.5: every bucket tiered on its own past 200k; 1h writes at 2x input (12 past 200k).
    cost, _ = book.claude_code_cost("claude-sonnet-4-5-20250929", Usage(
        input_tokens=250_000, output_tokens=1000, cache_read_tokens=300_000,
        cache_write_1h_tokens=210_000))
    assert cost == Decimal("0.9") + Decimal("0.015") + Decimal("0.12") + Decimal("1.32")
    # A model LiteLLM lists only under a provider's spelling.
    rates = book.claude_code_rates("claude-opus-4-1-20250805")
    assert (rates.input, rates.output) == (Decimal("0.000015"), Decimal("0.000075"))
    assert book.claude_code_rates("claude-opus-4-6").fast_multiplier == 6
    assert book.claude_code_rates("no-such-model") is None
    # The proxy's pricing is unchanged by the Claude Code rules.
    assert book.cost("claude-haiku-4-5", Usage(input_tokens=1_000_000))[0] == Decimal("1")


def test_discovery_follows_claude_config_dir(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", f" {tmp_path / 'missing'} , {corpus / 'projects'}")
    assert config_dirs() == [corpus]
    files = log_files(config_dirs())
    assert [f.path for f in files] == sorted(f.path for f in files) and len(files) == 5
    sub = [f for f in files if "subagents" in f.path][0]
    assert (sub.project, sub.session_id, sub.project_path) == ("-home-u-alpha", "sess-a", "-home-u-alpha")
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="CLAUDE_CONFIG_DIR"):
        config_dirs()
    monkeypatch.delenv("CLAUDE_CONFIG_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))          # no ~/.claude there
    monkeypatch.setenv("XDG_CONFIG_HOME", str(corpus.parent))   # $XDG_CONFIG_HOME/claude
    assert config_dirs() == [corpus]
    with pytest.raises(ConfigError, match="no Claude logs"):
        config_dirs([tmp_path / "missing"])
    assert session_parts(["p", "s", "chat.jsonl"]) == ("s", "p")


def test_python_line_rules_agree_with_sql(corpus):
    """The status line's Python parser sees the fixture's lines as the import does."""
    lines = (corpus / "projects" / "-home-u-alpha" / "sess-a.jsonl").read_text().split("\n")[:-1]
    entries = [e for i, ln in enumerate(lines, 1)
               if (e := parse_line(ln, log_file="f", line_no=i, path_session="sess-a"))]
    assert len(entries) == 10   # 2 x m1, 3 x m2, m3, its replay, m4, m6, m7
    kept = {e.request_id: e for e in keep_best(entries)}
    assert kept["claude-code:m1:req:r1"].output_tokens == 20
    assert kept["claude-code:m2:session:sess-a"].cache_write_5m_tokens == 1000
    assert kept["claude-code:m7:req:r7"].model == "claude-opus-4-6-fast"


def test_read_ahead_is_only_a_hint(tmp_path, monkeypatch):
    """The import asks the kernel to read upcoming batches early (claude_batch.read_ahead): for
    the new bytes of files it will read, and never failing on a file that vanished meanwhile."""
    import os

    from llmlab.importers import claude_batch
    from llmlab.importers.claude_paths import LogFile

    log = tmp_path / "s.jsonl"
    log.write_text("{}\n" * 10)
    asked = []
    monkeypatch.setattr(os, "posix_fadvise", lambda fd, off, n, advice: asked.append((off, advice)),
                        raising=False)

    def work(path, offset=0, read=True):
        f = LogFile(str(path), 30, 0, "p", "s", "p")
        return claude_batch.Work(f, offset=offset, read=read)

    claude_batch.read_ahead([work(log, offset=12), work(tmp_path / "gone.jsonl"),
                             work(log, read=False)])
    assert asked == [(12, os.POSIX_FADV_WILLNEED)]


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
def test_parse_threads_run_at_lower_priority_and_the_caller_does_not(tmp_path, monkeypatch):
    """Parse threads yield the CPU to the store writer (claude_batch._yield_to_the_writer); the
    thread that called the import keeps its priority."""
    import os
    import threading

    from llmlab.importers import claude_batch

    seen = []
    real = claude_batch.parse

    def spy(con, works, book):
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return real(con, works, book)
    monkeypatch.setattr(claude_batch, "parse", spy)
    monkeypatch.setattr(claude_batch, "BATCH_BYTES", 1)   # a batch per file: the pool runs
    root = fx.write(tmp_path / "claude")
    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    r = import_claude_code(tmp_path / "home", [root], workers=2)
    assert r.rows_written - r.replays_merged == fx.ROWS
    assert len(seen) > 1 and set(seen) == {min(before + claude_batch.PARSE_NICENESS, 19)}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before
