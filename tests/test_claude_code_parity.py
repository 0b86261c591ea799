"""Our reports against ccusage 20.0.24 itself on the fixture corpus.

Needs the ccusage binary at $LLMLAB_CCUSAGE, which ./scripts/test installs (npm, at setup) and
sets; skipped without it. The 1 GB comparison is benchmarks/claude_parity.py.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

import claude_fixture as fx
from llmlab import reports
from llmlab.importers import import_claude_code

CCUSAGE_VERSION = "20.0.24"


@pytest.fixture(scope="module")
def ccusage() -> str:
    # Tests never reach the network: ./scripts/test installs ccusage at setup and sets this.
    given = os.environ.get("LLMLAB_CCUSAGE")
    if not given or not os.access(given, os.X_OK):
        pytest.skip(f"needs ccusage@{CCUSAGE_VERSION}: run ./scripts/test (it installs it with npm) "
                    "or set LLMLAB_CCUSAGE to its path")
    return given


def run_ccusage(binary: str, root, command: str) -> dict:
    env = dict(os.environ, CLAUDE_CONFIG_DIR=str(root), NO_COLOR="1")
    out = subprocess.run([binary, "claude", command, "--json", "--offline", "--timezone", "UTC"],
                         env=env, capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout)


TOKENS = ("inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens", "totalTokens")


def _same(ours: list[dict], theirs: list[dict], key: str, tokens=TOKENS, cost="totalCost"):
    o, t = {r[key]: r for r in ours}, {r[key]: r for r in theirs}
    assert set(o) == set(t)
    for k in t:
        assert [o[k][x] for x in tokens] == [t[k][x] for x in tokens], k
        assert o[k][cost] == pytest.approx(t[k][cost], rel=1e-9, abs=1e-12), k


def test_reports_equal_ccusage(ccusage, store, tmp_path):
    root = fx.write(tmp_path / "claude")
    import_claude_code(store, [root])
    for unit, key in (("monthly", "month"), ("weekly", "week")):
        _same(reports.period_report(store, unit)[unit], run_ccusage(ccusage, root, unit)[unit], key)
    theirs = run_ccusage(ccusage, root, "session")["sessions"]
    ours = reports.session_report(store)["sessions"]
    _same(ours, theirs, "sessionId")
    assert [(s["sessionId"], s["projectPath"], s["firstActivity"], s["lastActivity"]) for s in ours] \
        == [(s["sessionId"], s["projectPath"], s["firstActivity"], s["lastActivity"]) for s in theirs]
    block_keys = ("id", "startTime", "endTime", "actualEndTime", "isGap", "entries", "totalTokens",
                  "tokenCounts", "models")
    ours_b = reports.blocks_report(store)["blocks"]
    theirs_b = run_ccusage(ccusage, root, "blocks")["blocks"]
    assert [{k: b[k] for k in block_keys} for b in ours_b] == \
        [{k: b[k] for k in block_keys} for b in theirs_b]
    assert [b["costUSD"] for b in ours_b] == pytest.approx([b["costUSD"] for b in theirs_b])


def test_ccusage_daily_counts_requestless_blocks_again(ccusage, store, tmp_path):
    """Where we differ on purpose: ccusage's daily loader counts each content-block line of a
    message without requestId (m2, logged 3 times, 1,060 tokens) once per line."""
    root = fx.write(tmp_path / "claude")
    import_claude_code(store, [root])
    theirs = run_ccusage(ccusage, root, "daily")["totals"]
    ours = reports.period_report(store, "daily")["totals"]
    assert theirs["totalTokens"] == ours["totalTokens"] + 2 * 1_060
    assert ours["totalTokens"] == run_ccusage(ccusage, root, "monthly")["totals"]["totalTokens"]
