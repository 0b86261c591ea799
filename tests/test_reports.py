"""Reports in ccusage's JSON shape, over the hand-counted Claude Code fixture (and a proxy row)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

import claude_fixture as fx
import llmlab
from llmlab import reports
from llmlab.errors import QueryError
from llmlab.importers import import_claude_code
from llmlab.store import UsageRecord

ROW_KEYS = {"inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens",
            "totalTokens", "totalCost", "modelsUsed", "modelBreakdowns"}


@pytest.fixture
def store(store, tmp_path):
    import_claude_code(store, [fx.write(tmp_path / "claude")])
    return store


def _by(rows, key):
    return {r[key]: (r["totalTokens"], round(r["totalCost"], 9)) for r in rows}


def test_monthly_weekly_daily_agree_with_the_hand_count(store):
    monthly = reports.period_report(store, "monthly")
    assert _by(monthly["monthly"], "month") == fx.MONTHS
    assert monthly["totals"]["totalTokens"] == fx.TOTAL_TOKENS
    assert monthly["totals"]["totalCost"] == pytest.approx(fx.COST_AUTO, abs=1e-9)
    daily = reports.period_report(store, "daily")
    assert _by(daily["daily"], "date") == fx.DAYS_UTC
    # Our daily counts each message once, so it adds up to the monthly report exactly.
    assert daily["totals"] == monthly["totals"]
    weekly = reports.period_report(store, "weekly")     # weeks start on Sunday, as ccusage's
    assert [w["week"] for w in weekly["weekly"]] == ["2026-09-27", "2026-11-01"]
    assert weekly["totals"] == monthly["totals"]
    monday = reports.period_report(store, "weekly", start_of_week="monday")
    assert [w["week"] for w in monday["weekly"]] == ["2026-09-28", "2026-11-02"]


def test_rows_have_ccusage_shape(store):
    oct_ = reports.period_report(store, "monthly")["monthly"][0]
    assert set(oct_) == ROW_KEYS | {"month"}
    assert oct_["totalTokens"] == sum(oct_[k] for k in ("inputTokens", "outputTokens",
                                                          "cacheCreationTokens", "cacheReadTokens"))
    # Models in order of first use; <synthetic> named nowhere; breakdowns by cost.
    assert oct_["modelsUsed"] == [fx.HAIKU, fx.SONNET, "claude-opus-4-6-fast"]
    names = [b["modelName"] for b in oct_["modelBreakdowns"]]
    assert names == [fx.SONNET, fx.HAIKU, "claude-opus-4-6-fast"]
    sonnet = oct_["modelBreakdowns"][0]
    assert (sonnet["inputTokens"], sonnet["cacheCreationTokens"]) == (250_010, 11_000)
    assert sonnet["cost"] == pytest.approx(1.09953, abs=1e-9)
    assert set(sonnet) == {"modelName", "inputTokens", "outputTokens", "cacheCreationTokens",
                           "cacheReadTokens", "cost"}


def test_timezone_moves_days_not_totals(store):
    tokyo = reports.period_report(store, "daily", timezone="Asia/Tokyo")
    assert _by(tokyo["daily"], "date") == fx.DAYS_TOKYO
    assert tokyo["totals"]["totalTokens"] == fx.TOTAL_TOKENS
    with pytest.raises(QueryError, match="timezone"):
        reports.period_report(store, "daily", timezone="Mars/Base")


def test_cost_modes(store):
    t = lambda mode: reports.period_report(store, "monthly", mode=mode)["totals"]["totalCost"]  # noqa: E731
    assert t("auto") == pytest.approx(fx.COST_AUTO, abs=1e-9)
    assert t("calculate") == pytest.approx(fx.COST_CALCULATE, abs=1e-9)
    assert t("display") == pytest.approx(fx.COST_DISPLAY, abs=1e-9)
    with pytest.raises(QueryError):
        t("guess")


def test_filters_since_until_project_order(store):
    r = reports.period_report(store, "daily", since="20261002", until="2026-10-03", order="desc")
    assert [d["date"] for d in r["daily"]] == ["2026-10-03", "2026-10-02"]
    beta = reports.period_report(store, "monthly", project="-home-u-beta")
    assert beta["totals"]["totalTokens"] == 2_520


def test_sessions(store):
    r = reports.session_report(store)
    got = {s["sessionId"]: (s["totalTokens"], round(s["totalCost"], 9)) for s in r["sessions"]}
    assert got == fx.SESSIONS
    a = next(s for s in r["sessions"] if s["sessionId"] == "sess-a")
    assert (a["projectPath"], a["firstActivity"], a["lastActivity"]) == (
        "-home-u-alpha", "2026-10-01T10:00:00.000Z", "2026-10-01T12:30:00.000Z")
    assert [s["sessionId"] for s in r["sessions"]] == ["sess-a", "sess-b", "sess-d"]  # by project/session
    # since/until pick sessions by the day of their last activity.
    assert [s["sessionId"] for s in reports.session_report(store, since="2026-10-02")["sessions"]] \
        == ["sess-b", "sess-d"]


def test_blocks_follow_the_five_hour_rule(store):
    blocks = reports.blocks_report(store)["blocks"]
    kinds = [(b["startTime"], b["isGap"], b["entries"]) for b in blocks]
    assert kinds == [
        ("2026-10-01T10:00:00.000Z", False, 7), ("2026-10-01T17:30:00.000Z", True, 0),
        ("2026-10-02T23:00:00.000Z", False, 1), ("2026-10-03T04:30:00.000Z", True, 0),
        ("2026-10-03T09:00:00.000Z", False, 1), ("2026-10-03T14:00:00.000Z", True, 0),
        ("2026-11-02T01:00:00.000Z", False, 1)]
    first = blocks[0]
    assert (first["endTime"], first["actualEndTime"]) == ("2026-10-01T15:00:00.000Z",
                                                          "2026-10-01T12:30:00.000Z")
    assert first["totalTokens"] == 566_500 and first["costUSD"] == pytest.approx(1.64514)
    assert first["models"] == [fx.HAIKU, fx.SONNET, "claude-opus-4-6-fast"]
    assert first["isActive"] is False and first["burnRate"] is None
    assert blocks[1]["id"] == "gap-2026-10-01T17:30:00.000Z"
    assert blocks[1]["endTime"] == "2026-10-02T23:30:00.000Z"


def test_active_block_has_burn_rate_and_projection(store):
    now = datetime(2026, 10, 1, 13, 0, tzinfo=timezone.utc)
    active = reports.blocks_report(store, active=True, now=now)["blocks"]
    assert len(active) == 1 and active[0]["isActive"]
    rate, proj = active[0]["burnRate"], active[0]["projection"]
    # 566,500 tokens (254,300 of them input + output) and $1.64514 over 150 minutes.
    assert rate["tokensPerMinute"] == pytest.approx(566_500 / 150)
    assert rate["tokensPerMinuteForIndicator"] == pytest.approx(254_300 / 150)
    assert rate["costPerHour"] == pytest.approx(1.64514 / 150 * 60)
    assert proj == {"totalTokens": 1_019_700, "totalCost": 2.96, "remainingMinutes": 120}
    assert reports.blocks_report(store, active=True)["blocks"] == []


def test_reports_cover_other_sources(store):
    store.record(UsageRecord(request_id="p1", source="proxy",
                             started_at=datetime(2026, 10, 1, 11, 30, tzinfo=timezone.utc),
                             model="gpt-4o", input_tokens=1000, output_tokens=10, cache_read_tokens=0,
                             total_tokens=1010, cost_usd=Decimal("0.01"), session_id="nb-1",
                             project="atlas"))
    store.flush()
    everything = reports.period_report(store, "monthly")["totals"]
    assert everything["totalTokens"] == fx.TOTAL_TOKENS + 1010
    only = reports.period_report(store, "monthly", source="claude-code")["totals"]
    assert only["totalTokens"] == fx.TOTAL_TOKENS
    proxy = reports.session_report(store, source="proxy")["sessions"]
    assert [(s["sessionId"], s["projectPath"], s["modelsUsed"]) for s in proxy] == \
        [("nb-1", "atlas", ["gpt-4o"])]
    assert reports.blocks_report(store, source="proxy")["blocks"][0]["entries"] == 1


def test_lab_helpers(store):
    lab = llmlab.open(store.db_path)
    s = lab.sessions()
    assert list(s.session_id) == ["sess-a", "sess-b", "sess-d"]
    assert int(s.total_tokens.sum()) == fx.TOTAL_TOKENS
    b = lab.blocks()
    assert list(b.is_gap) == [False, True, False, True, False, True, False]
    assert int(b.total_tokens.sum()) == fx.TOTAL_TOKENS
    now = datetime(2026, 10, 1, 13, 0, tzinfo=timezone.utc)
    active = lab.blocks(active=True, now=now)
    assert active.projected_tokens.tolist() == [1_019_700]


def test_empty_store(tmp_path):
    from llmlab.store import Store

    empty = Store(tmp_path / "empty")
    assert reports.period_report(empty, "daily") == {"daily": [], "totals": {
        "inputTokens": 0, "outputTokens": 0, "cacheCreationTokens": 0, "cacheReadTokens": 0,
        "totalTokens": 0, "totalCost": 0}}
    assert reports.blocks_report(empty) == {"blocks": []}
    assert reports.session_report(empty)["sessions"] == []
