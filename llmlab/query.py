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

import os
from typing import Any

import pandas as pd

from .errors import QueryError
from .filters import NAMED_FILTERS, Filter
from .store import Store
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
_GROUPS = ("model", "provider", "project", "client", "source", "user_id", "session_id", "key_id")
_REQUEST_COLUMNS = [c for c in COLUMN_NAMES if c not in ("request_body", "response_body")]


class Lab:
    """Queries over one llmlab store. Get one with :func:`llmlab.open`."""

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
        sql = f"""
            WITH b AS (
              SELECT epoch_ms(started_at) // 900000 AS q {', ' + group if group else ''},
                     {_METRICS_SQL}
              FROM requests WHERE {where}
              GROUP BY ALL
            )
            SELECT date_trunc('{unit}', timezone(?, to_timestamp(q * 900)))::DATE AS {key}
                   {', ' + group if group else ''}, {_REAGG_SQL}
            FROM b GROUP BY ALL ORDER BY ALL
        """
        with self.store.read() as con:
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
        sql = f"""
            WITH g AS (SELECT {cols}, {_METRICS_SQL} FROM requests WHERE {where} GROUP BY ALL)
            SELECT {cols}, {_REAGG_SQL},
                   coalesce(sum(cost_usd) / nullif(sum(sum(cost_usd)) OVER (), 0), 0)::DOUBLE AS share
            FROM g GROUP BY ALL ORDER BY cost_usd DESC NULLS LAST, requests DESC, {cols}
        """
        with self.store.read() as con:
            return con.execute(sql, params).df()

    def totals(self, *, since=None, until=None, timezone=None, **filters) -> pd.DataFrame:
        """One row: the aggregates over the whole selection."""
        f = Filter.build(since=since, until=until, timezone=timezone, **filters)
        where, params = f.sql()
        sql = f"SELECT {_REAGG_SQL} FROM (SELECT {_METRICS_SQL} FROM requests WHERE {where})"
        with self.store.read() as con:
            df = con.execute(sql, params).df()
        return df.fillna({c: 0 for c in METRIC_COLUMNS if c != "mean_duration_ms"})

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

    # -- housekeeping ---------------------------------------------------------------------
    def pending(self) -> dict:
        """What still waits in the journal to be ingested."""
        b = self.store.backlog()
        return {"segments": b.segments, "bytes": b.bytes, "oldest_age_s": b.oldest_age_s}

    def flush(self):
        """Ingest whatever waits in the journal now (normally the server does this)."""
        return self.store.flush()


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
