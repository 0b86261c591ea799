"""`llmlab import claude-code`, `llmlab report`, `llmlab statusline` as real processes, and the
status line's arithmetic (store + the transcript's unimported tail)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone

import pytest

import claude_fixture as fx
from llmlab.cli.statusline import status_line
from llmlab.importers import import_claude_code


def llmlab(*args, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import sys; from llmlab.cli import main; "
                           "sys.exit(main())", *args], input=stdin, capture_output=True,
                          text=True, timeout=120)


def test_import_report_statusline_commands(tmp_path, llmlab_home):
    corpus = fx.write(tmp_path / "claude")
    r = llmlab("import", "claude-code", "--path", str(corpus), "--quiet")
    assert r.returncode == 0, r.stderr
    assert "5 of 5 files read" in r.stdout and "4 lines dropped" in r.stdout
    r = llmlab("import", "claude-code", "--path", str(corpus), "-q")
    assert "0 of 5 files read" in r.stdout and "5 files unchanged" in r.stdout
    monthly = json.loads(llmlab("report", "monthly", "--json").stdout)
    assert monthly["totals"]["totalTokens"] == fx.TOTAL_TOKENS
    assert [m["month"] for m in monthly["monthly"]] == ["2026-10", "2026-11"]
    calc = json.loads(llmlab("report", "monthly", "--json", "--mode", "calculate").stdout)
    assert calc["totals"]["totalCost"] == pytest.approx(fx.COST_CALCULATE)
    table = llmlab("report", "daily", "--breakdown", "--source", "claude-code").stdout
    assert "2026-10-01" in table and "haiku-4-5-20251001" in table and "$1.65" in table
    assert "(gap)" in llmlab("report", "blocks").stdout
    sessions = llmlab("report", "session", "--order", "desc").stdout.splitlines()
    assert "sess-d" in sessions[3] and "sess-a" in sessions[5]
    hook = json.dumps({"session_id": "sess-a", "model": {"display_name": "Haiku 4.5"},
                       "transcript_path": str(corpus / "projects/-home-u-alpha/sess-a.jsonl")})
    line = llmlab("statusline", stdin=hook).stdout.strip()
    assert line.startswith("Haiku 4.5 | session $1.65 | today $") and line.count("\n") == 0


def test_bad_input_is_a_clear_error(tmp_path):
    r = llmlab("import", "claude-code", "--path", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and "no Claude logs found" in r.stderr
    r = llmlab("report", "daily", "--timezone", "Mars/Base")
    assert r.returncode == 2 and "unknown timezone" in r.stderr
    assert llmlab("statusline", stdin="not json").stdout.startswith("Claude | session $0.00")


def test_statusline_adds_the_unimported_tail(store, tmp_path):
    corpus = fx.write(tmp_path / "claude")
    import_claude_code(store, [corpus])
    transcript = corpus / "projects" / "-home-u-beta" / "sess-b.jsonl"
    hook = {"session_id": "sess-b", "transcript_path": str(transcript),
            "model": {"id": fx.SONNET}}
    now = datetime(2026, 11, 2, 2, 0, tzinfo=timezone.utc)
    # From the store: sess-b $0.0053; today (Nov 2) b2 $0.0018; b2's block 01:00-06:00.
    assert status_line(hook, home=store.home, now=now) == \
        f"{fx.SONNET} | session $0.01 | today $0.00 | block $0.00, 4h00m left"
    big = {"input_tokens": 100_000, "output_tokens": 10_000}      # $0.45 each
    with open(transcript, "a") as fh:
        fh.write(fx.line("2026-11-02T01:30:00.000Z", "t1", fx.SONNET, big, req="rt1",
                         session="sess-b") + "\n")
        fh.write(fx.line("2026-11-02T01:45:00.000Z", "t2", fx.SONNET, big, req="rt2",
                         session="sess-b") + "\n")
        fh.write(fx.line("2026-11-02T01:00:00.000Z", "b2", fx.SONNET,      # already imported
                         {"input_tokens": 100, "output_tokens": 100}, req="rb2x",
                         session="sess-b") + "\n")
        fh.write(fx.line("2026-11-02T01:50:00.000Z", "t3", fx.SONNET, big, req="rt3")[:50])
    # session 0.0053 + 0.9; today 0.0018 + 0.9; block $0.9018 over 45 minutes = $1.20/h.
    expected = f"{fx.SONNET} | session $0.91 | today $0.90 | block $0.90, 4h00m left, $1.20/h"
    assert status_line(hook, home=store.home, now=now) == expected
    assert (store.home / "cache" / "statusline.json").exists()
    assert status_line(hook, home=store.home, now=now) == expected      # from the cache
    with open(transcript, "a") as fh:                                   # the cut-off line ends
        fh.write(fx.line("2026-11-02T01:50:00.000Z", "t3", fx.SONNET, big, req="rt3")[50:] + "\n")
    # + $0.45; the block now spans 01:00-01:50: $1.3518 over 50 minutes = $1.62/h.
    expected = f"{fx.SONNET} | session $1.36 | today $1.35 | block $1.35, 4h00m left, $1.62/h"
    assert status_line(hook, home=store.home, now=now) == expected
    import_claude_code(store, [corpus])                                  # the tail is stored now
    assert status_line(hook, home=store.home, now=now) == expected      # and not counted twice
