"""Query helpers against independent pandas computations on a known dataset.

The dataset is built in Python, journaled and flushed through the real store; the expected
answers are computed with pandas from the Python records (never from the database). Every helper
runs twice: through the flusher's rollup and straight from ``requests``.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

import llmlab
from llmlab.errors import QueryError
from llmlab.query import METRIC_COLUMNS
from llmlab.store import Store, UsageRecord, rollup

START = datetime(2026, 10, 1, tzinfo=timezone.utc)  # spans the EU (Oct 25) and US (Nov 1) DST ends
DAYS = 75
MODELS = [("gpt-4o", "openai"), ("gpt-4o", "azure"), ("claude-sonnet-4-5", "anthropic"),
          ("gemini-2.5-flash", "gemini"), ("my-finetune", None)]
PROJECTS = ["atlas", "billing-bot", "research", None]
CLIENTS = {"atlas": "acme", "billing-bot": "globex", "research": None, None: None}
TIMEZONES = ["UTC", "Asia/Kolkata", "America/New_York", "Asia/Kathmandu", "Pacific/Chatham"]
TOKENS = ["input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
          "reasoning_tokens", "total_tokens"]


def make_records(n: int = 1500, seed: int = 42) -> list[UsageRecord]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        model, provider = rng.choice(MODELS)
        project = rng.choice(PROJECTS)
        # Many calls near local midnights of the zones under test, so day boundaries matter.
        base = START + timedelta(days=rng.randrange(DAYS))
        started = base + timedelta(hours=rng.choice([0, 5, 11, 18, 23]),
                                   minutes=rng.choice([0, 14, 15, 29, 30, 44, 45, 59]),
                                   seconds=rng.randrange(60), microseconds=rng.randrange(10**6))
        status = rng.choice([200] * 12 + [400, 429, 500])
        r = UsageRecord(
            request_id=f"q-{i:05d}", source=rng.choice(["proxy", "proxy", "claude-code"]),
            started_at=started, ended_at=started + timedelta(seconds=1),
            duration_ms=None if i % 17 == 0 else float(rng.randrange(50, 9000)),
            stream=rng.random() < 0.5, status_code=status,
            error_type="timeout" if (status == 200 and i % 97 == 0) else (
                None if status == 200 else "api_error"),
            model=model, model_requested=model, provider=provider, project=project,
            client=CLIENTS[project], user_id=rng.choice(["ana", "sam", None]),
            input_tokens=None if i % 41 == 0 else rng.randrange(0, 8000),
            output_tokens=rng.randrange(0, 2000),
            cache_read_tokens=rng.choice([0, 0, rng.randrange(1, 4000)]),
            cache_write_tokens=rng.choice([0, rng.randrange(1, 500)]),
            reasoning_tokens=rng.choice([0, rng.randrange(0, 300)]),
            cost_usd=None if provider is None or i % 23 == 0 else
            Decimal(rng.randrange(1, 5 * 10**7)) / Decimal(10**12),
            tags=rng.choice([[], ["batch"], ["batch", "eval"]]),
        )
        out.append(r.finalize_totals())
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    records = make_records()
    store = Store(tmp_path_factory.mktemp("query") / "store")
    writer = store.journal()
    for k, r in enumerate(records):
        writer.append(r)
        if k % 400 == 399:
            store.flush()  # several flushes: the rollup is built incrementally
    store.flush()
    frame = pd.DataFrame({
        "request_id": [r.request_id for r in records],
        "source": [r.source for r in records],
        "started_at": pd.to_datetime([r.started_at for r in records], utc=True),
        "model": [r.model for r in records],
        "provider": [r.provider for r in records],
        "project": [r.project for r in records],
        "client": [r.client for r in records],
        "user_id": [r.user_id for r in records],
        "status_code": [r.status_code for r in records],
        "error_type": [r.error_type for r in records],
        "duration_ms": [r.duration_ms for r in records],
        "cost_usd": [float(r.cost_usd) if r.cost_usd is not None else np.nan for r in records],
        "tags": [r.tags for r in records],
        **{c: [getattr(r, c) if getattr(r, c) is not None else np.nan for r in records]
           for c in TOKENS},
    })
    return store, frame


@pytest.fixture(params=["rollup", "requests"])
def lab(request, dataset):
    store, _ = dataset
    lab = llmlab.open(store.home)
    lab.use_rollup = request.param == "rollup"
    return lab


@pytest.fixture
def frame(dataset):
    return dataset[1]


# -- the independent computation ---------------------------------------------------------------

def metrics(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    df = df.assign(
        _error=(df.status_code >= 400) | df.error_type.notna(),
        _unpriced=df.cost_usd.isna(),
    )
    agg = {"requests": ("request_id", "size"), "errors": ("_error", "sum"),
           **{c: (c, "sum") for c in TOKENS}, "cost_usd": ("cost_usd", "sum"),
           "unpriced": ("_unpriced", "sum"), "mean_duration_ms": ("duration_ms", "mean")}
    if not keys:
        row = {name: getattr(df[col], how)() if how != "size" else len(df)
               for name, (col, how) in agg.items()}
        return pd.DataFrame([row])
    return df.groupby(keys, dropna=False).agg(**agg).reset_index()


def local_period(df: pd.DataFrame, tz: str, unit: str) -> pd.Series:
    day = df.started_at.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()
    if unit == "week":
        return day - pd.to_timedelta(day.dt.weekday, unit="D")
    if unit == "month":
        return day - pd.to_timedelta(day.dt.day - 1, unit="D")
    return day


def assert_same(got: pd.DataFrame, want: pd.DataFrame, keys: list[str]) -> None:
    cols = keys + METRIC_COLUMNS
    got = got[cols].sort_values(keys, na_position="first").reset_index(drop=True) if keys else got[cols]
    want = want[cols].sort_values(keys, na_position="first").reset_index(drop=True) if keys else want[cols]
    assert len(got) == len(want)
    for c in cols:
        g, w = got[c], want[c]
        if c in keys:
            if pd.api.types.is_datetime64_any_dtype(w):
                g = pd.to_datetime(g)
                assert (g.values.astype("datetime64[s]") == w.values.astype("datetime64[s]")).all(), c
            else:
                assert [None if pd.isna(x) else x for x in g] == [None if pd.isna(x) else x for x in w], c
        else:
            np.testing.assert_allclose(g.astype(float), w.astype(float), rtol=1e-9, atol=1e-12,
                                       err_msg=c)


# -- time series --------------------------------------------------------------------------------

@pytest.mark.parametrize("tz", TIMEZONES)
@pytest.mark.parametrize("unit,helper,key", [("day", "daily", "date"), ("week", "weekly", "week"),
                                              ("month", "monthly", "month")])
def test_periods_in_timezones(lab, frame, tz, unit, helper, key):
    got = getattr(lab, helper)(timezone=tz)
    want = metrics(frame.assign(**{key: local_period(frame, tz, unit)}), [key])
    assert_same(got, want, [key])
    assert got[key].is_monotonic_increasing


def test_daily_by_a_column(lab, frame):
    got = lab.daily(timezone="Asia/Kolkata", by="project")
    want = metrics(frame.assign(date=local_period(frame, "Asia/Kolkata", "day")), ["date", "project"])
    assert_same(got, want, ["date", "project"])


def test_daily_with_date_filters_in_a_half_hour_zone(lab, frame):
    tz = "Asia/Kolkata"
    got = lab.daily(timezone=tz, since="2026-10-20", until="2026-11-03", project=["atlas", "research"])
    local = local_period(frame, tz, "day")
    sel = frame[(local >= "2026-10-20") & (local <= "2026-11-03") & frame.project.isin(["atlas", "research"])]
    want = metrics(sel.assign(date=local_period(sel, tz, "day")), ["date"])
    assert_same(got, want, ["date"])
    assert pd.to_datetime(got.date).min() >= pd.Timestamp("2026-10-20")
    assert pd.to_datetime(got.date).max() <= pd.Timestamp("2026-11-03")


# -- breakdowns ----------------------------------------------------------------------------------

@pytest.mark.parametrize("helper,keys", [("by_model", ["model", "provider"]),
                                         ("by_provider", ["provider"]),
                                         ("by_project", ["project"]), ("by_client", ["client"])])
def test_breakdowns(lab, frame, helper, keys):
    got = getattr(lab, helper)()
    want = metrics(frame, keys)
    assert_same(got, want, keys)
    assert got.share.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(got.share, got.cost_usd / got.cost_usd.sum())
    assert got.cost_usd.is_monotonic_decreasing  # most expensive first


def test_same_model_through_two_providers_stays_apart(lab):
    got = lab.by_model()
    assert set(got[got.model == "gpt-4o"].provider) == {"openai", "azure"}


def test_by_any_columns(lab, frame):
    got = lab.by("source", "model")
    assert_same(got, metrics(frame, ["source", "model"]), ["source", "model"])
    got = lab.by("user_id")  # not a rollup key: read from requests either way
    assert_same(got, metrics(frame, ["user_id"]), ["user_id"])


def test_totals_and_unpriced(lab, frame):
    got = lab.totals()
    assert_same(got, metrics(frame, []), [])
    unpriced = int(frame.cost_usd.isna().sum())
    assert got.loc[0, "unpriced"] == unpriced > 0
    # Unpriced calls add nothing to the cost and are never silently 0.
    assert got.loc[0, "cost_usd"] == pytest.approx(frame.cost_usd.sum(skipna=True))
    assert lab.by_model().set_index("model").loc["my-finetune", "unpriced"] == \
        (frame.model == "my-finetune").sum()


def test_totals_of_an_empty_selection(lab):
    got = lab.totals(project="no-such-project")
    assert got.loc[0, "requests"] == 0 and got.loc[0, "cost_usd"] == 0
    assert got.loc[0, "unpriced"] == 0 and pd.isna(got.loc[0, "mean_duration_ms"])
    assert lab.daily(project="no-such-project").empty
    assert lab.by_model(project="no-such-project").empty


# -- filters ---------------------------------------------------------------------------------------

FILTER_CASES = [
    dict(project="atlas"),
    dict(project=["atlas", "billing-bot"], model=["gpt-4o", "gemini-2.5-flash"]),
    dict(client="acme", source="proxy"),
    dict(provider=("openai", "anthropic")),
    dict(since="2026-11-01", until="2026-11-30"),
    dict(since="2026-11-01", timezone="America/New_York"),
    dict(since="2026-10-10T06:30:00", until="2026-10-12T06:30:00", timezone="Asia/Kolkata"),
    dict(since=datetime(2026, 10, 10, 7, 3, tzinfo=timezone.utc),
         until=datetime(2026, 10, 29, 13, 1, 59, tzinfo=timezone.utc)),  # not on a quarter: raw path
    dict(since=date(2026, 12, 1), user_id="ana"),
    dict(tags="eval"),
    dict(status_code=[429, 500]),
]


def _select(frame: pd.DataFrame, since=None, until=None, timezone=None, **eq) -> pd.DataFrame:
    tz = timezone or "UTC"
    mask = pd.Series(True, index=frame.index)

    def instant(v, end):
        if isinstance(v, datetime):
            return pd.Timestamp(v)
        if isinstance(v, date) or len(str(v)) == 10:
            d = pd.Timestamp(str(v)) + (pd.Timedelta(days=1) if end else pd.Timedelta(0))
            return d.tz_localize(tz)
        return pd.Timestamp(v).tz_localize(tz)
    if since is not None:
        mask &= frame.started_at >= instant(since, False)
    if until is not None:
        mask &= frame.started_at < instant(until, True)
    for col, v in eq.items():
        values = list(v) if isinstance(v, (list, tuple)) else [v]
        if col == "tags":
            mask &= frame.tags.apply(lambda t: any(x in t for x in values))
        else:
            mask &= frame[col].isin(values)
    return frame[mask]


@pytest.mark.parametrize("flt", FILTER_CASES, ids=lambda f: ",".join(f))
def test_filters(lab, frame, flt):
    sel = _select(frame, **flt)
    assert len(sel) > 0
    assert_same(lab.totals(**flt), metrics(sel, []), [])
    assert_same(lab.by_project(**flt), metrics(sel, ["project"]), ["project"])
    tz = flt.get("timezone") or "UTC"
    assert_same(lab.daily(**flt), metrics(sel.assign(date=local_period(sel, tz, "day")), ["date"]),
                ["date"])
    got = lab.requests(limit=None, **flt)
    assert sorted(got.request_id) == sorted(sel.request_id)


def test_the_rollup_answers_what_it_can_and_only_that(dataset):
    store, _ = dataset
    from llmlab.filters import Filter

    with store.read() as con:
        assert rollup.preaggregate(con, Filter.build(), ["model", "provider"]) is not None
        assert rollup.preaggregate(con, Filter.build(project=["a", "b"], since="2026-11-01",
                                                     timezone="Asia/Kolkata"), []) is not None
        assert rollup.preaggregate(con, Filter.build(user_id="ana"), []) is None
        assert rollup.preaggregate(con, Filter.build(tags="x"), []) is None
        assert rollup.preaggregate(con, Filter.build(since="2026-11-01T10:10:00"), []) is None
        assert rollup.preaggregate(con, Filter.build(), ["user_id"]) is None


# -- individual calls ----------------------------------------------------------------------------

def test_requests_newest_first_with_limit(lab, frame):
    got = lab.requests(limit=10)
    want = frame.sort_values(["started_at", "request_id"], ascending=[False, True]).head(10)
    assert list(got.request_id) == list(want.request_id)
    assert "request_body" not in got.columns
    assert "request_body" in lab.requests(limit=1, bodies=True).columns
    assert len(lab.requests(limit=None)) == len(frame)
    assert lab.requests(limit=0).empty


def test_sql_and_distinct(lab, frame):
    df = lab.sql("SELECT model, count(*) AS n FROM requests GROUP BY model ORDER BY model")
    assert dict(zip(df.model, df.n)) == frame.groupby("model").size().to_dict()
    assert lab.sql("SELECT ? AS x", [5]).x.tolist() == [5]
    assert lab.distinct("project") == sorted(p for p in PROJECTS if p)
    assert lab.distinct("model", client="acme") == sorted(frame[frame.client == "acme"].model.unique())


# -- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("call,message", [
    (lambda lab: lab.daily(colour="red"), "unknown filter 'colour'"),
    (lambda lab: lab.by_model(projcet="atlas"), "unknown filter 'projcet'"),
    (lambda lab: lab.totals(since="2026-11-02", until="2026-11-01"), "after until"),
    (lambda lab: lab.daily(since="2026-11-02T10:00:00", until="2026-11-02T09:00:00"), "after until"),
    (lambda lab: lab.daily(timezone="Mars/Olympus_Mons"), "unknown timezone 'Mars/Olympus_Mons'"),
    (lambda lab: lab.by_model(timezone="../etc/passwd"), "unknown timezone"),
    (lambda lab: lab.daily(since="2026-13-01"), "not a valid date"),
    (lambda lab: lab.daily(since="2026-02-30"), "not a valid date"),
    (lambda lab: lab.daily(until="yesterday"), "not a date (YYYY-MM-DD) or an ISO datetime"),
    (lambda lab: lab.daily(since="10/01/2026"), "not a date"),
    (lambda lab: lab.daily(since=20261001), "must be a date"),
    (lambda lab: lab.daily(by="colour"), "cannot group by 'colour'"),
    (lambda lab: lab.by("request_body"), "cannot group by 'request_body'"),
    (lambda lab: lab.distinct("colour"), "unknown column 'colour'"),
    (lambda lab: lab.requests(limit=-1), "limit must be >= 0"),
])
def test_bad_input_gets_a_clear_query_error(lab, call, message):
    with pytest.raises(QueryError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        call(lab)
    assert isinstance(info.value, ValueError)  # QueryError is a ValueError too
