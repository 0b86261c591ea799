"""Read helpers: the usage store as pandas DataFrames. No widgets, no charts.

Every helper takes a short read lease, runs one query and returns a materialised DataFrame, so a
notebook never keeps usage.duckdb open (DESIGN §3). Aggregates share one set of columns:

    requests            calls in the group
    errors              calls that failed (HTTP status >= 400 or an error type)
    input_tokens        uncached input
    output_tokens       output, reasoning included
    cache_read_tokens   input read from a prompt cache
    cache_write_tokens  input written to a prompt cache
    reasoning_tokens    the reasoning part of output_tokens
    total_tokens        input + cache read + cache write + output
    cost_usd            priced cost in USD (unpriced calls add nothing here ...)
    unpriced            ... and are counted here instead, never silently as 0
    mean_duration_ms    mean wall time of a call
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from typing import Any

import pandas as pd

from .errors import QueryError
from .filters import NAMED_FILTERS, Filter
from .store import Store, rollup
from .store.schema import COLUMN_NAMES

METRIC_COLUMNS = [
    "requests", "errors", "input_tokens", "output_tokens", "cache_read_tokens",
    "cache_write_tokens", "reasoning_tokens", "total_tokens", "cost_usd", "unpriced",
    "mean_duration_ms",
]
_METRICS_SQL = """
    count(*)::BIGINT AS requests,
    count(*) FILTER (WHERE status_code >= 400 OR error_type IS NOT NULL)::BIGINT AS errors,
    coalesce(sum(input_tokens), 0)::BIGINT AS input_tokens,
    coalesce(sum(output_tokens), 0)::BIGINT AS output_tokens,
    coalesce(sum(cache_read_tokens), 0)::BIGINT AS cache_read_tokens,
    coalesce(sum(cache_write_tokens), 0)::BIGINT AS cache_write_tokens,
    coalesce(sum(reasoning_tokens), 0)::BIGINT AS reasoning_tokens,
    coalesce(sum(total_tokens), 0)::BIGINT AS total_tokens,
    coalesce(sum(cost_usd), 0) AS cost_usd,
    count(*) FILTER (WHERE cost_usd IS NULL AND source IS NOT NULL)::BIGINT AS unpriced,
    sum(duration_ms) AS sum_duration_ms,
    count(duration_ms) AS n_duration
"""
# Re-aggregating the 15-minute pre-aggregates of _METRICS_SQL into calendar periods.
_REAGG_SQL = """
    sum(requests)::BIGINT AS requests, sum(errors)::BIGINT AS errors,
    sum(input_tokens)::BIGINT AS input_tokens, sum(output_tokens)::BIGINT AS output_tokens,
    sum(cache_read_tokens)::BIGINT AS cache_read_tokens,
    sum(cache_write_tokens)::BIGINT AS cache_write_tokens,
    sum(reasoning_tokens)::BIGINT AS reasoning_tokens, sum(total_tokens)::BIGINT AS total_tokens,
    sum(cost_usd)::DOUBLE AS cost_usd, sum(unpriced)::BIGINT AS unpriced,
    (sum(sum_duration_ms) / nullif(sum(n_duration), 0))::DOUBLE AS mean_duration_ms
"""
_PERIODS = {"day": "date", "week": "week", "month": "month"}
# Latency detail beside _METRICS_SQL (exact quantiles; calls without a value are skipped).
_LATENCY_SQL = """
    quantile_cont(duration_ms, 0.95) AS p95_duration_ms,
    avg(ttft_ms) AS mean_ttft_ms,
    quantile_cont(ttft_ms, 0.95) AS p95_ttft_ms
"""
_SUMMARY_SQL = """
    requests, errors, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
    reasoning_tokens, total_tokens, cost_usd::DOUBLE AS cost_usd, unpriced,
    (sum_duration_ms / nullif(n_duration, 0))::DOUBLE AS mean_duration_ms,
    p95_duration_ms::DOUBLE AS p95_duration_ms, mean_ttft_ms::DOUBLE AS mean_ttft_ms,
    p95_ttft_ms::DOUBLE AS p95_ttft_ms,
    coalesce(errors / nullif(requests, 0), 0)::DOUBLE AS error_rate
"""
_UTC = dt_timezone.utc
_GROUPS = ("model", "provider", "project", "client", "source", "user_id", "session_id", "key_id")
_REQUEST_COLUMNS = [c for c in COLUMN_NAMES if c not in ("request_body", "response_body")]


class Lab:
    """Queries over one llmlab store. Get one with :func:`llmlab.open`."""

    # Answer aggregates from the flusher's 15-minute rollup when it is exact (store/rollup.py);
    # False reads ``requests`` every time (tests and benchmarks compare the two).
    use_rollup = True

    def __init__(self, store: Store):
        self.store = store

    def __repr__(self) -> str:
        return f"<llmlab.Lab {self.store.db_path}>"

    @property
    def path(self):
        return self.store.db_path

    # -- raw access -----------------------------------------------------------------------
    def sql(self, query: str, params: list | dict | None = None) -> pd.DataFrame:
        """Run any read-only SQL against the store and return the result as a DataFrame."""
        with self.store.read() as con:
            return con.execute(query, params or []).df()

    def requests(self, *, since=None, until=None, timezone=None, limit: int | None = 1000,
                 bodies: bool = False, **filters) -> pd.DataFrame:
        """Individual calls, newest first (``bodies=True`` adds stored request/response JSON)."""
        f = Filter.build(since=since, until=until, timezone=timezone, **filters)
        where, params = f.sql()
        cols = COLUMN_NAMES if bodies else _REQUEST_COLUMNS
        select = ", ".join("cost_usd::DOUBLE AS cost_usd" if c == "cost_usd" else c for c in cols)
        sql = (f"SELECT {select} FROM requests "
               f"WHERE {where} ORDER BY started_at DESC, request_id")
        if limit is not None:
            if int(limit) < 0:
                raise QueryError("limit must be >= 0")
            sql += f" LIMIT {int(limit)}"
        with self.store.read() as con:
            return con.execute(sql, params).df()

    # -- time series ----------------------------------------------------------------------
    def daily(self, **kw) -> pd.DataFrame:
        """One row per day (in ``timezone``) with the aggregate columns."""
        return self._by_period("day", **kw)

    def weekly(self, **kw) -> pd.DataFrame:
        """One row per ISO week (Monday start) in ``timezone``."""
        return self._by_period("week", **kw)

    def monthly(self, **kw) -> pd.DataFrame:
        """One row per calendar month in ``timezone``."""
        return self._by_period("month", **kw)

    def _by_period(self, unit: str, *, since=None, until=None, timezone=None, by: str | None = None,
                   **filters) -> pd.DataFrame:
        f = Filter.build(since=since, until=until, timezone=timezone, **filters)
        where, params = f.sql()
        group = _check_group(by) if by else None
        key = _PERIODS[unit]
        # Pre-aggregate into 15-minute UTC buckets (cheap integer maths over every row), then move
        # only the buckets into the timezone: every real UTC offset is a multiple of 15 minutes.
        raw = f"""
              SELECT epoch_ms(started_at) // 900000 AS q {', ' + group if group else ''},
                     {_METRICS_SQL}
              FROM requests WHERE {where}
              GROUP BY ALL
        """
        with self.store.read() as con:
            pre, params = self._preaggregate(con, f, [group] if group else [], raw, params, period=True)
            sql = f"""
                WITH b AS ({pre})
                SELECT date_trunc('{unit}', timezone(?, to_timestamp(q * 900)))::DATE AS {key}
                       {', ' + group if group else ''}, {_REAGG_SQL}
                FROM b GROUP BY ALL ORDER BY ALL
            """
            df = con.execute(sql, params + [f.tz.key]).df()
        return df

    # -- breakdowns -----------------------------------------------------------------------
    def by_model(self, **kw) -> pd.DataFrame:
        """Aggregates per model (with its provider), most expensive first, with ``share``."""
        return self._grouped(["model", "provider"], **kw)

    def by_provider(self, **kw) -> pd.DataFrame:
        return self._grouped(["provider"], **kw)

    def by_project(self, **kw) -> pd.DataFrame:
        return self._grouped(["project"], **kw)

    def by_client(self, **kw) -> pd.DataFrame:
        return self._grouped(["client"], **kw)

    def by(self, *columns: str, **kw) -> pd.DataFrame:
        """Aggregates per any grouping columns, e.g. ``lab.by("project", "model")``."""
        return self._grouped([_check_group(c) for c in columns], **kw)

    def _grouped(self, keys: list[str], *, since=None, until=None, timezone=None,
                 **filters) -> pd.DataFrame:
        f = Filter.build(since=since, until=until, timezone=timezone, **filters)
        where, params = f.sql()
        cols = ", ".join(keys)
        raw = f"SELECT {cols}, {_METRICS_SQL} FROM requests WHERE {where} GROUP BY ALL"
        with self.store.read() as con:
            pre, params = self._preaggregate(con, f, keys, raw, params)
            sql = f"""
                WITH g AS ({pre})
                SELECT {cols}, {_REAGG_SQL},
                       coalesce(sum(cost_usd) / nullif(sum(sum(cost_usd)) OVER (), 0), 0)::DOUBLE AS share
                FROM g GROUP BY ALL ORDER BY cost_usd DESC NULLS LAST, requests DESC, {cols}
            """
            return con.execute(sql, params).df()

    def totals(self, *, since=None, until=None, timezone=None, **filters) -> pd.DataFrame:
        """One row: the aggregates over the whole selection."""
        f = Filter.build(since=since, until=until, timezone=timezone, **filters)
        where, params = f.sql()
        raw = f"SELECT {_METRICS_SQL} FROM requests WHERE {where}"
        with self.store.read() as con:
            pre, params = self._preaggregate(con, f, [], raw, params)
            df = con.execute(f"SELECT {_REAGG_SQL} FROM ({pre})", params).df()
        return df.fillna({c: 0 for c in METRIC_COLUMNS if c != "mean_duration_ms"})

    def _preaggregate(self, con, f: Filter, groups: list[str], raw_sql: str, raw_params: list,
                      *, period: bool = False) -> tuple[str, list]:
        """Partial aggregates from the rollup when it answers exactly, else ``raw_sql``."""
        if self.use_rollup:
            planned = rollup.preaggregate(con, f, groups, f.tz if period else None)
            if planned is not None:
                return planned
        return raw_sql, raw_params

    def distinct(self, column: str, **kw) -> list[Any]:
        """The distinct non-null values of a column in the selection (for filter menus)."""
        _check_column(column)
        f = Filter.build(**kw)
        where, params = f.sql()
        with self.store.read() as con:
            rows = con.execute(
                f"SELECT DISTINCT {column} FROM requests WHERE {where} AND {column} IS NOT NULL "
                f"ORDER BY 1", params).fetchall()
        return [r[0] for r in rows]

    # -- dashboard helpers ----------------------------------------------------------------
    def summary(self, *, since=None, until=None, timezone=None, **filters) -> pd.DataFrame:
        """One row: the aggregates plus latency detail (``p95_duration_ms``, ``mean_ttft_ms``,
        ``p95_ttft_ms``) and ``error_rate`` (errors / requests, 0 when there are no calls)."""
        f = Filter.build(since=since, until=until, timezone=timezone, **filters)
        where, params = f.sql()
        sql = f"SELECT {_SUMMARY_SQL} FROM (SELECT {_METRICS_SQL}, {_LATENCY_SQL} FROM requests WHERE {where})"
        with self.store.read() as con:
            return _fill_summary(con.execute(sql, params).df())

    def compare(self, *, since, until, timezone=None, **filters) -> pd.DataFrame:
        """:meth:`summary` of ``since..until`` (index ``current``) next to the period of equal
        length just before it (index ``previous``), in one scan. Both ends are required."""
        prev_since, _ = previous_period(since, until)
        current = Filter.build(since=since, until=until, timezone=timezone, **filters)
        both = Filter.build(since=prev_since, until=until, timezone=timezone, **filters)
        where, params = both.sql()
        split = current.since.astimezone(_UTC)
        sql = f"""
            SELECT period, {_SUMMARY_SQL} FROM (
              SELECT CASE WHEN started_at >= ? THEN 'current' ELSE 'previous' END AS period,
                     {_METRICS_SQL}, {_LATENCY_SQL}
              FROM requests WHERE {where} GROUP BY 1)
        """
        with self.store.read() as con:
            df = con.execute(sql, [split] + params).df()
        df = df.set_index("period").reindex(["current", "previous"])
        df.index.name = None
        return _fill_summary(df)

    def hourly(self, *, since=None, until=None, timezone=None, by: str | None = None,
               **filters) -> pd.DataFrame:
        """One row per hour (local wall time in ``timezone``, column ``hour``)."""
        f = Filter.build(since=since, until=until, timezone=timezone, **filters)
        where, params = f.sql()
        group = _check_group(by) if by else None
        extra = f", {group}" if group else ""
        sql = f"""
            WITH b AS (SELECT epoch_ms(started_at) // 900000 AS q{extra}, {_METRICS_SQL}
                       FROM requests WHERE {where} GROUP BY ALL)
            SELECT date_trunc('hour', timezone(?, to_timestamp(q * 900))) AS hour{extra}, {_REAGG_SQL}
            FROM b GROUP BY ALL ORDER BY ALL
        """
        with self.store.read() as con:
            return con.execute(sql, params + [f.tz.key]).df()

    def requests_page(self, *, offset: int = 0, limit: int = 25, conversations_only: bool = False,
                      since=None, until=None, timezone=None, **filters) -> tuple[pd.DataFrame, int]:
        """``(calls, total)``: one page of calls, newest first, with ``has_conversation`` (a
        request body is stored), and how many calls the whole selection holds."""
        if int(offset) < 0 or int(limit) < 0:
            raise QueryError("offset and limit must be >= 0")
        f = Filter.build(since=since, until=until, timezone=timezone, **filters)
        where, params = f.sql()
        if conversations_only:
            where += " AND request_body IS NOT NULL"
        select = ", ".join("cost_usd::DOUBLE AS cost_usd" if c == "cost_usd" else c
                           for c in _REQUEST_COLUMNS)
        with self.store.read() as con:
            total = con.execute(f"SELECT count(*) FROM requests WHERE {where}", params).fetchone()[0]
            page = con.execute(
                f"SELECT {select}, request_body IS NOT NULL AS has_conversation FROM requests "
                f"WHERE {where} ORDER BY started_at DESC, request_id LIMIT {int(limit)} OFFSET {int(offset)}",
                params).df()
        return page, int(total)

    def request(self, request_id: str, *, started_at=None) -> dict | None:
        """One call as a dict, stored request/response bodies parsed from JSON; None if absent.

        ``started_at``: the call's start time, when known (a row of :meth:`requests_page`): the
        row is then found through the time column's zone maps, a few ms at any size, instead of
        reading every id (``request_id`` has no index: 0.1-0.2 s at 5M rows). With it, a call
        that started at another time is not returned.
        """
        where, params = "request_id = ?", [str(request_id)]
        if started_at is not None:   # a datetime, or a pandas Timestamp (one, to DuckDB)
            where, params = where + " AND started_at = ?", params + [started_at]
        with self.store.read() as con:
            cur = con.execute("SELECT * REPLACE (cost_usd::DOUBLE AS cost_usd) FROM requests "
                              f"WHERE {where}", params)
            row = cur.fetchone()
            names = [d[0] for d in cur.description]
        if row is None:
            return None
        out = dict(zip(names, row))
        for key in ("metadata", "request_body", "response_body"):
            if isinstance(out.get(key), str):
                try:
                    out[key] = json.loads(out[key])
                except ValueError:
                    pass  # keep text that is not JSON as it was stored
        return out

    @contextlib.contextmanager
    def snapshot(self):
        """Several helpers under one read lease: ``with lab.snapshot() as s: s.daily(); s.by_model()``.
        They see the same data and open the file once (a dashboard refresh). The file is held
        for the whole block, which delays ingestion meanwhile, so keep the block short."""
        with self.store.read() as con:
            yield Lab(_HeldLease(self.store, con))

    # -- ccusage-style reports (llmlab/reports.py) ----------------------------------------
    def sessions(self, *, since=None, until=None, timezone=None, mode: str = "auto",
                 **filters) -> pd.DataFrame:
        """One row per session (``project``, ``session_id``), in ccusage's order: tokens, cost,
        models, ``first_activity``/``last_activity``. ``since``/``until`` pick sessions by the
        day of their last activity; ``mode`` is ccusage's cost mode (auto/calculate/display)."""
        from .reports import session_report

        rows = session_report(self.store, since=since, until=until, timezone=timezone, mode=mode,
                              **filters)["sessions"]
        return pd.DataFrame([{
            "session_id": r["sessionId"], "project": r["projectPath"],
            "first_activity": pd.Timestamp(r["firstActivity"]),
            "last_activity": pd.Timestamp(r["lastActivity"]), **_report_tokens(r),
            "cost_usd": r["totalCost"], "models": r["modelsUsed"]} for r in rows],
            columns=["session_id", "project", "first_activity", "last_activity",
                     *_REPORT_TOKENS, "cost_usd", "models"])

    def blocks(self, *, since=None, until=None, timezone=None, mode: str = "auto",
               active: bool = False, session_hours: float = 5, now=None, **filters) -> pd.DataFrame:
        """ccusage's 5-hour billing blocks (gaps included, ``is_gap``), oldest first, with burn
        rate and projection for the active block. See :func:`llmlab.reports.blocks_report`."""
        from .reports import blocks_report

        blocks = blocks_report(self.store, since=since, until=until, timezone=timezone, mode=mode,
                               active=active, session_hours=session_hours, now=now,
                               **filters)["blocks"]
        out = []
        for b in blocks:
            rate, proj, tc = b["burnRate"] or {}, b["projection"] or {}, b["tokenCounts"]
            out.append({
                "block_id": b["id"], "start": pd.Timestamp(b["startTime"]),
                "end": pd.Timestamp(b["endTime"]),
                "actual_end": pd.Timestamp(b["actualEndTime"]) if b["actualEndTime"] else pd.NaT,
                "is_active": b["isActive"], "is_gap": b["isGap"], "entries": b["entries"],
                "input_tokens": tc["inputTokens"], "output_tokens": tc["outputTokens"],
                "cache_write_tokens": tc["cacheCreationInputTokens"],
                "cache_read_tokens": tc["cacheReadInputTokens"], "total_tokens": b["totalTokens"],
                "cost_usd": float(b["costUSD"]), "models": b["models"],
                "tokens_per_minute": rate.get("tokensPerMinute"),
                "cost_per_hour": rate.get("costPerHour"),
                "projected_tokens": proj.get("totalTokens"), "projected_cost": proj.get("totalCost"),
                "remaining_minutes": proj.get("remainingMinutes")})
        return pd.DataFrame(out, columns=[
            "block_id", "start", "end", "actual_end", "is_active", "is_gap", "entries",
            *_REPORT_TOKENS, "cost_usd", "models", "tokens_per_minute", "cost_per_hour",
            "projected_tokens", "projected_cost", "remaining_minutes"])

    # -- housekeeping ---------------------------------------------------------------------
    def pending(self) -> dict:
        """What still waits in the journal to be ingested."""
        b = self.store.backlog()
        return {"segments": b.segments, "bytes": b.bytes, "oldest_age_s": b.oldest_age_s}

    def flush(self):
        """Ingest whatever waits in the journal now (normally the server does this)."""
        return self.store.flush()

    # -- keys and budgets (llmlab/policy/, docs/users/budgets.md) -------------------------
    @property
    def keys(self):
        """Virtual keys: ``lab.keys.create(project=...)``, ``.list()``, ``.revoke(id)``, ``.rotate(id)``."""
        from .policy.report import Keys

        return Keys(self.store)

    def budgets(self, at=None) -> pd.DataFrame:
        """Every budget with spent, remaining, burn rate and projection in the period holding
        ``at`` (default now), including calls still waiting in the journal."""
        from .policy.report import budgets_frame

        return budgets_frame(self.store, at)

    def set_budget(self, scope: str, target: str, limit_usd: float, period="month", *,
                   hard: bool = False, thresholds=None):
        """Create or update the budget of a ``'key'``, ``'project'`` or ``'client'``."""
        from .policy.registry import set_budget

        return set_budget(self.store, scope, target, limit_usd, period, hard=hard,
                          thresholds=thresholds)

    def delete_budget(self, budget_id: str) -> None:
        from .policy.registry import delete_budget

        delete_budget(self.store, budget_id)

    def alerts(self, since=None, budget_id: str | None = None) -> pd.DataFrame:
        """Budget alerts fired (once per budget, period and threshold), newest first."""
        from .policy.report import alerts_frame

        return alerts_frame(self.store, since, budget_id)


_REPORT_TOKENS = ["input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens",
                  "total_tokens"]


def _report_tokens(r: dict) -> dict:
    return dict(zip(_REPORT_TOKENS, (r["inputTokens"], r["outputTokens"], r["cacheCreationTokens"],
                                     r["cacheReadTokens"], r["totalTokens"])))


def previous_period(since, until) -> tuple[date, date]:
    """The period of equal length just before ``since..until`` (whole days, both inclusive)."""
    first, last = _as_day(since, "since"), _as_day(until, "until")
    if first > last:
        raise QueryError(f"since ({since}) is after until ({until})")
    days = (last - first).days + 1
    return first - timedelta(days=days), first - timedelta(days=1)


def _as_day(value, what: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            pass
    raise QueryError(f"{what}={value!r} must be a date (YYYY-MM-DD) for a period comparison")


def _fill_summary(df: pd.DataFrame) -> pd.DataFrame:
    counts = [c for c in METRIC_COLUMNS if c not in ("mean_duration_ms",)] + ["error_rate"]
    return df.fillna({c: 0 for c in counts})


class _HeldLease:
    """Stands in for a Store inside :meth:`Lab.snapshot`: ``read()`` hands out the held lease."""

    def __init__(self, store: Store, con):
        self._store, self._con = store, con

    def read(self):
        return contextlib.nullcontext(self._con)

    def write(self):
        raise QueryError("a snapshot is read-only")

    def __getattr__(self, name):
        return getattr(self._store, name)


def _check_column(name: str) -> str:
    if name not in COLUMN_NAMES:
        raise QueryError(f"unknown column {name!r}; columns: {', '.join(COLUMN_NAMES)}")
    return name


def _check_group(name: str) -> str:
    if name not in _GROUPS:
        raise QueryError(f"cannot group by {name!r}; choose from {', '.join(_GROUPS)}")
    return name


def open(path: str | os.PathLike | None = None, *, lock_timeout: float | None = None) -> Lab:  # noqa: A001
    """Open the store at ``path`` (a folder or a .duckdb file), by default ``$LLMLAB_HOME``."""
    store = Store(path, lock_timeout=lock_timeout)
    store.ensure()
    return Lab(store)


__all__ = ["Lab", "open", "METRIC_COLUMNS", "NAMED_FILTERS"]
