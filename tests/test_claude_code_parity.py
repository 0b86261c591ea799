"""Our reports against ccusage 20.0.24 itself on the fixture corpus.

Needs the ccusage binary: $LLMLAB_CCUSAGE (path to it), or npm to install ccusage@20.0.24 from
the npm registry into a temporary folder. Skipped when neither works (no network). The 1 GB
comparison is benchmarks/claude_parity.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

import claude_fixture as fx
from llmlab import reports
from llmlab.importers import import_claude_code

CCUSAGE_VERSION = "20.0.24"


@pytest.fixture(scope="module")
def ccusage(tmp_path_factory) -> str:
    given = os.environ.get("LLMLAB_CCUSAGE")
    if given:
        return given
    npm = shutil.which("npm")
    if not npm:
        pytest.skip("npm is not installed and LLMLAB_CCUSAGE is not set")
    prefix = tmp_path_factory.mktemp("ccusage")
    try:
        subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", str(prefix),
                        f"ccusage@{CCUSAGE_VERSION}"], check=True, capture_output=True, timeout=180)
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.skip(f"could not install ccusage@{CCUSAGE_VERSION} from npm: {exc}")
    return str(prefix / "node_modules" / ".bin" / "ccusage")


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
