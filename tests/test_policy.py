"""Keys, budgets, the reservation ledger and rate limits, without a server; lab.budgets() on
controlled data (the store and the journal); m004 from older schemas."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import duckdb
import pandas as pd
import pytest

import llmlab
from llmlab.errors import BudgetExceededError, ConfigError, RateLimitedError
from llmlab.policy import registry
from llmlab.policy.budgets import Budget, parse_period, parse_thresholds, period_bounds
from llmlab.policy.keys import hash_key, parse_key
from llmlab.policy.ledger import Ledger, Settled
from llmlab.policy.ratelimit import RateLimiter
from llmlab.store import Store, UsageRecord
from llmlab.store.migrations import MIGRATIONS

UTC = timezone.utc


def t(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


# -- periods and parsing --------------------------------------------------------------------------
@pytest.mark.parametrize("period,seconds,at,start,end", [
    ("day", None, "2026-03-31T23:59:59", "2026-03-31T00:00:00", "2026-04-01T00:00:00"),
    ("week", None, "2026-12-06T12:00:00", "2026-11-30T00:00:00", "2026-12-07T00:00:00"),  # Sun -> Mon
    ("month", None, "2026-12-31T23:00:00", "2026-12-01T00:00:00", "2027-01-01T00:00:00"),
    ("month", None, "2028-02-29T10:00:00", "2028-02-01T00:00:00", "2028-03-01T00:00:00"),
    ("custom", 3600, "2026-05-05T10:59:59", "2026-05-05T10:00:00", "2026-05-05T11:00:00"),
    ("custom", 7 * 86400, "1970-01-08T00:00:00", "1970-01-08T00:00:00", "1970-01-15T00:00:00"),
])
def test_period_bounds_are_utc(period, seconds, at, start, end):
    assert period_bounds(period, seconds, t(at)) == (t(start), t(end))


def test_period_and_threshold_parsing():
    assert parse_period("month") == ("month", None)
    assert parse_period("12h") == ("custom", 43200)
    assert parse_period("7d") == ("custom", 604800)
    assert parse_period(3600) == ("custom", 3600)
    for bad in ("fortnight", "10", 0, True):
        with pytest.raises(ConfigError):
            parse_period(bad)
    assert parse_thresholds("1,0.5,80") == (0.5, 0.8, 1.0)
    assert parse_thresholds(None) is None
    with pytest.raises(ConfigError):
        parse_thresholds("soon")
    b = Budget.make("client", "acme", 20, "12h", hard=True)
    assert b.budget_id == "client:acme:43200s" and b.period_name == "43200s"
    for args in (("team", "x", 1), ("project", " ", 1), ("project", "p", 0), ("project", "p", "x")):
        with pytest.raises(ConfigError):
            Budget.make(*args)


def test_key_format_and_hash():
    lab = llmlab.open()
    made = lab.keys.create("p")
    key_id, secret = parse_key(made.key)
    assert key_id == made.key_id and len(secret) >= 43
    assert made.info.secret_hash == hash_key(made.key) == hashlib.sha256(made.key.encode()).hexdigest()
    assert made.info.matches(made.key) and not made.info.matches(made.key + "x")
    assert made.key not in repr(made)
    assert parse_key("sk-llmlab-nothex-abc") is None and parse_key("sk-other") is None


# -- the ledger ----------------------------------------------------------------------------------
def _ledger(limit=1.0, hard=True, spent=0.0, at="2026-06-10T12:00:00"):
    b = Budget.make("key", "aaaaaaaaaaaa", limit, "day", hard=hard)
    ledger = Ledger()
    ledger.install({b.budget_id: b}, {b.budget_id: spent}, set(), t(at))
    return ledger, b


def test_reservations_stop_concurrent_calls_at_the_limit():
    ledger, b = _ledger(spent=0.95)
    now = t("2026-06-10T12:00:01")
    entries = ledger.matching("aaaaaaaaaaaa", "p", None)
    admitted = []
    for _ in range(50):   # all in flight at once: none settled yet
        try:
            admitted.append(ledger.reserve(entries, 0.04, now))
        except BudgetExceededError as exc:
            assert exc.entry.budget is b and exc.status == 429
            assert b.budget_id in exc.message and "resets at 2026-06-11T00:00:00Z" in exc.message
    assert len(admitted) == 2           # 0.95 + 0.04 < 1 ; 0.99 + 0.04 >= 1 refused after
    for i, res in enumerate(admitted):
        ledger.settle(res, Settled(f"r{i}", now, 0.02, "aaaaaaaaaaaa", "p", None), now)
    e = ledger.entries[b.budget_id]
    assert e.reserved == 0 and e.in_flight == 0 and e.spent == pytest.approx(0.99)
    assert e.spent <= b.limit_usd + 0.02


def test_soft_budgets_never_refuse_and_periods_roll_over():
    ledger, b = _ledger(hard=False, spent=5.0)
    e = ledger.entries[b.budget_id]
    res = ledger.reserve([e], 1.0, t("2026-06-10T13:00:00"))
    # The call started yesterday (in UTC) but ends after midnight: yesterday's spend, dropped.
    ledger.settle(res, Settled("r", t("2026-06-10T23:59:59"), 2.0, b.target, None, None),
                  t("2026-06-11T00:00:05"))
    assert (e.period_start, e.spent, e.reserved) == (t("2026-06-11T00:00:00"), 0.0, 0.0)


def test_install_keeps_live_state_and_counts_calls_settled_while_loading():
    ledger, b = _ledger(spent=0.5)
    now = t("2026-06-10T12:00:00")
    ledger.begin_capture()
    ledger.settle(None, Settled("seen", now, 0.1, b.target, "p", None), now)
    ledger.settle(None, Settled("missed", now, 0.2, b.target, "p", None), now)
    project = Budget.make("project", "p", 10, "day")
    fresh = ledger.install({b.budget_id: b, project.budget_id: project},
                           {project.budget_id: 1.0}, {"seen"}, now)
    assert [e.budget for e in fresh] == [project]
    assert ledger.entries[b.budget_id].spent == pytest.approx(0.8)     # live, untouched
    assert ledger.entries[project.budget_id].spent == pytest.approx(1.2)  # snapshot + missed


# -- rate limits ----------------------------------------------------------------------------------
def test_rpm_window_and_retry_after():
    rl = RateLimiter()
    for s in (0.0, 10.0, 20.0):
        rl.admit("k", 3, None, s)
    with pytest.raises(RateLimitedError) as exc:
        rl.admit("k", 3, None, 30.0)
    assert "3 requests per minute" in exc.value.message
    assert exc.value.headers == {"Retry-After": "30"}   # at 60 s the first call leaves
    rl.admit("k", 3, None, 60.5)


def test_tpm_counts_finished_tokens():
    rl = RateLimiter()
    rl.admit("k", None, 100, 0.0)
    rl.used("k", 60, 1.0)
    rl.admit("k", None, 100, 2.0)
    rl.used("k", 60, 3.0)
    with pytest.raises(RateLimitedError) as exc:
        rl.admit("k", None, 100, 4.0)
    assert "100 tokens per minute" in exc.value.message
    assert exc.value.headers == {"Retry-After": "57"}   # the first 60 tokens leave at 61 s
    rl.admit("k", None, 100, 61.5)


# -- lab.budgets() on controlled data --------------------------------------------------------------
def _rec(rid, when, cost, **kw):
    return UsageRecord(request_id=rid, source=kw.pop("source", "proxy"), started_at=t(when),
                       cost_usd=Decimal(str(cost)), status_code=200, **kw)


def test_budgets_burn_rate_and_projection(store):
    lab = llmlab.open(store.home)
    key = lab.keys.create("p", client="c")
    lab.set_budget("project", "p", 100, "month")
    lab.set_budget("client", "c", 30, "month", hard=True, thresholds=[0.5, 1])
    lab.set_budget("key", key.key_id, 5, "week")
    journal = store.journal()
    for rec in [
        _rec("oct", "2026-10-31T23:59:59", 50, project="p", client="c"),    # last period
        _rec("a", "2026-11-02T00:00:00", 12, project="p", client="c", key_id=key.key_id),
        _rec("cc", "2026-11-03T00:00:00", 7, project="p", source="claude-code"),  # not the proxy's
        _rec("b", "2026-11-05T00:00:00", 8, project="p", client="c"),
        _rec("later", "2026-11-20T00:00:00", 99, project="p", client="c"),  # after `at`
    ]:
        journal.append(rec)
    store.flush()
    # Still in the journal (not flushed): counted all the same.
    journal.append(_rec("j", "2026-11-10T12:00:00", 4, project="p", client="c", key_id=key.key_id))
    at = "2026-11-11T00:00:00Z"   # 240 hours into November, 2 days into the week
    df = lab.budgets(at=at).set_index("budget_id")
    assert list(lab.budgets(at=at).columns) == [
        "budget_id", "scope", "target", "period", "limit_usd", "hard", "thresholds",
        "period_start", "period_end", "spent_usd", "remaining_usd", "used_pct",
        "burn_rate_usd_per_hour", "projected_usd", "exhausts_at"]
    p = df.loc["project:p:month"]
    assert p["spent_usd"] == pytest.approx(24.0) and p["remaining_usd"] == pytest.approx(76.0)
    assert p["used_pct"] == pytest.approx(0.24)
    assert p["burn_rate_usd_per_hour"] == pytest.approx(0.1)
    assert p["projected_usd"] == pytest.approx(72.0)          # 0.1 $/h * 720 h
    assert pd.isna(p["exhausts_at"])                          # 1000 h: after the month ends
    assert p["period_start"] == pd.Timestamp("2026-11-01", tz="UTC")
    assert p["period_end"] == pd.Timestamp("2026-12-01", tz="UTC")
    assert p["thresholds"] == [0.8, 1.0] and not p["hard"]
    c = df.loc["client:c:month"]
    assert c["spent_usd"] == pytest.approx(24.0) and c["hard"] and c["thresholds"] == [0.5, 1.0]
    assert c["exhausts_at"] == pd.Timestamp("2026-11-13T12:00:00", tz="UTC")  # 30 / 0.1 = 300 h
    k = df.loc[f"key:{key.key_id}:week"]
    assert k["period_start"] == pd.Timestamp("2026-11-09", tz="UTC")
    assert k["spent_usd"] == pytest.approx(4.0)               # only the journaled call this week
    assert k["burn_rate_usd_per_hour"] == pytest.approx(4 / 48)
    assert k["exhausts_at"] == pd.Timestamp("2026-11-09", tz="UTC") + pd.Timedelta(hours=60)
    # Over the limit: no exhaustion date, used_pct past 1.
    lab.set_budget("project", "p", 20, "month")
    over = lab.budgets(at=at).set_index("budget_id").loc["project:p:month"]
    assert over["used_pct"] == pytest.approx(1.2) and pd.isna(over["exhausts_at"])
    lab.delete_budget("project:p:month")
    assert "project:p:month" not in set(lab.budgets(at=at)["budget_id"])
    with pytest.raises(ConfigError):
        lab.delete_budget("project:p:month")


def test_alerts_are_remembered_once(store):
    lab = llmlab.open(store.home)
    assert lab.alerts().empty
    row = {"alert_id": "project:p:month:20261101T000000Z:0.8", "budget_id": "project:p:month",
           "scope": "project", "target": "p", "threshold": 0.8, "spent_usd": 80.0,
           "limit_usd": 100.0, "period": "month", "period_start": t("2026-11-01T00:00:00"),
           "period_end": t("2026-12-01T00:00:00"), "hard": False,
           "fired_at": t("2026-11-20T00:00:00"), "message": "80%"}
    registry.record_alerts(store, [row, row])
    registry.record_alerts(store, [row])
    df = lab.alerts()
    assert list(df["alert_id"]) == [row["alert_id"]] and df.loc[0, "fired_at"] == pd.Timestamp(
        "2026-11-20", tz="UTC")
    state = registry.load_state(store, t("2026-11-25T00:00:00"))
    assert state.fired == {row["alert_id"]}
    assert registry.load_state(store, t("2026-12-02T00:00:00")).fired == set()   # period over


@pytest.mark.parametrize("upto", [2, 3])
def test_m004_from_older_schemas_keeps_data_and_takes_keys(tmp_path, upto):
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE _llmlab_migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMPTZ)")
    for name, fn in MIGRATIONS[:upto]:
        fn(con)
        con.execute("INSERT INTO _llmlab_migrations VALUES (?, now())", [name])
    con.execute("INSERT INTO requests (request_id, source, started_at, project, cost_usd) "
                "VALUES ('old', 'proxy', now(), 'p', 1.5)")
    con.close()
    store = Store(path)
    assert "m004_keys_budgets_alerts" in store.migrate()
    lab = llmlab.open(path)
    # A 100-year period (from 1970): no period boundary can fall between the insert and now.
    made = lab.keys.create("p", budget_usd=10, period="36500d")
    lab.set_budget("project", "p", 10, "36500d")
    df = lab.budgets().set_index("budget_id")
    assert df.loc["project:p:3153600000s", "spent_usd"] == pytest.approx(1.5)   # the old row
    assert df.loc[f"key:{made.key_id}:3153600000s", "spent_usd"] == 0
    assert list(lab.keys.list()["key_id"]) == [made.key_id]


def test_bad_key_input_is_a_clear_error():
    lab = llmlab.open()
    with pytest.raises(ConfigError, match="project"):
        lab.keys.create("")
    with pytest.raises(ConfigError, match="rpm"):
        lab.keys.create("p", rpm=0)
    with pytest.raises(ConfigError, match="expires"):
        lab.keys.create("p", expires="next tuesday")
    with pytest.raises(ConfigError, match="key id"):
        lab.keys.revoke("nope")
    with pytest.raises(ConfigError, match="no key"):
        lab.set_budget("key", "0123456789ab", 5)
    made = lab.keys.create("p", expires=datetime.now(UTC) + timedelta(days=1))
    assert lab.keys.list().loc[0, "status"] == "active"
    lab.keys.revoke(made.key_id)
    with pytest.raises(ConfigError, match="revoked"):
        lab.keys.rotate(made.key_id)
