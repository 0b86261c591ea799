"""Usage reports in ccusage's JSON shape: daily, weekly, monthly, session and 5-hour blocks.

    from llmlab.reports import period_report, session_report, blocks_report
    period_report(store, "monthly", source="claude-code")   # {"monthly": [...], "totals": {...}}
    blocks_report(store, active=True)                         # {"blocks": [...]}

They read any source in the store (proxied calls, imported Claude Code logs, ...), so tools
written for ``ccusage --json`` read ours. Token names map as ccusage counts them:
``inputTokens`` = uncached input, ``cacheCreationTokens`` = cache writes (5m + 1h),
``cacheReadTokens``, ``outputTokens``; ``totalTokens`` is their sum.

Cost ``mode`` is ccusage's ``--mode``: ``auto`` (a cost recorded in the log, else priced),
``calculate`` (always priced from tokens) or ``display`` (recorded costs only). It only changes
rows that carry both (imported logs); other rows always count their stored cost.

Our daily report counts every message once, so daily rows add up to the monthly ones; ccusage's
own ``daily`` counts each content-block line of a message without ``requestId`` again
(docs/users/claude-code.md explains the difference).
"""

from __future__ import annotations

import bisect
from decimal import Decimal
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone

from .errors import QueryError
from .filters import Filter, zone

MODES = ("auto", "calculate", "display")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
BLOCK_HOURS = 5
_HOUR_MS = 3_600_000
_TOKENS = ("inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens")
_SUMS_SQL = """
    coalesce(sum(input_tokens), 0)::BIGINT, coalesce(sum(output_tokens), 0)::BIGINT,
    coalesce(sum(cache_write_tokens), 0)::BIGINT, coalesce(sum(cache_read_tokens), 0)::BIGINT,
    coalesce(sum({cost}), 0)::DECIMAL(38,12)"""
# Rows without a model, and Claude Code's <synthetic> messages, count in totals but name no model.
_NAMED_MODEL = "CASE WHEN model <> '<synthetic>' THEN model END"


def cost_sql(mode: str = "auto") -> str:
    """The SQL expression of a row's cost under ccusage's ``--mode``."""
    if mode not in MODES:
        raise QueryError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "calculate":
        return "CASE WHEN source = 'claude-code' THEN calculated_cost_usd ELSE cost_usd END"
    if mode == "display":
        return "CASE WHEN source = 'claude-code' THEN recorded_cost_usd ELSE cost_usd END"
    return "cost_usd"


def _where(since=None, until=None, timezone=None, **filters) -> tuple[Filter, str, list]:
    f = Filter.build(since=since, until=until, timezone=timezone, **filters)
    where, params = f.sql()
    return f, where, params


def _check_order(order: str) -> bool:
    if order not in ("asc", "desc"):
        raise QueryError(f"order must be 'asc' or 'desc', not {order!r}")
    return order == "desc"


# -- daily / weekly / monthly -------------------------------------------------------------------
def period_report(store, unit: str, *, since=None, until=None, timezone=None, mode: str = "auto",
                  order: str = "asc", start_of_week: str = "sunday", **filters) -> dict:
    """``{"daily"|"weekly"|"monthly": [...], "totals": {...}}`` as ccusage prints it."""
    keys = {"daily": "date", "weekly": "week", "monthly": "month"}
    if unit not in keys:
        raise QueryError(f"unit must be daily, weekly or monthly, not {unit!r}")
    if start_of_week not in WEEKDAYS:
        raise QueryError(f"start_of_week must be one of {', '.join(WEEKDAYS)}")
    desc = _check_order(order)
    f, where, params = _where(since, until, timezone, **filters)
    # Quarter-hour buckets first (integer maths over every row), then only the buckets move into
    # the timezone: every UTC offset in use is a whole number of quarters.
    sql = f"""
        WITH b AS (
          SELECT epoch_ms(started_at) // 900000 AS q, {_NAMED_MODEL} AS m,
                 {_SUMS_SQL.format(cost=cost_sql(mode))}, min(started_at) AS first_at
          FROM requests WHERE {where} GROUP BY ALL
        )
        SELECT strftime(timezone(?, to_timestamp(q * 900)), '%Y-%m-%d') AS day, m,
               sum(#3)::BIGINT, sum(#4)::BIGINT, sum(#5)::BIGINT, sum(#6)::BIGINT, sum(#7),
               min(first_at)
        FROM b GROUP BY ALL
    """
    with store.read() as con:
        rows = con.execute(sql, params + [f.tz.key]).fetchall()
    week_start = WEEKDAYS.index(start_of_week)
    groups: dict[str, list] = {}
    for day, model, *vals in rows:
        groups.setdefault(_period_key(day, unit, week_start), []).append((model, *vals))
    out = [_summary({keys[unit]: key}, parts) for key, parts in sorted(groups.items(), reverse=desc)]
    return {unit: out, "totals": _totals(out)}


def _period_key(day: str, unit: str, week_start: int) -> str:
    if unit == "daily":
        return day
    if unit == "monthly":
        return day[:7]
    d = date.fromisoformat(day)
    return (d - timedelta(days=(d.weekday() - week_start) % 7)).isoformat()


def _summary(head: dict, parts: list[tuple]) -> dict:
    """One report row from (model, input, output, cache write, cache read, cost, first seen)."""
    # Money stays Decimal until the end, so rows, breakdowns and totals add up exactly.
    models: dict[str, list] = {}
    totals = [0, 0, 0, 0, Decimal(0)]
    for model, inp, out, cw, cr, cost, first in parts:
        for i, v in enumerate((inp, out, cw, cr, cost)):
            totals[i] += v
        if model is None:
            continue
        m = models.setdefault(model, [0, 0, 0, 0, Decimal(0), first])
        for i, v in enumerate((inp, out, cw, cr, cost)):
            m[i] += v
        m[5] = min(m[5], first)
    row = dict(head)
    row.update(zip(_TOKENS, totals[:4]))
    row["totalTokens"] = sum(totals[:4])
    row["totalCost"] = float(totals[4])
    row["_cost"] = totals[4]
    row["modelsUsed"] = [m for m, _ in sorted(models.items(), key=lambda kv: (kv[1][5], kv[0]))]
    row["modelBreakdowns"] = [
        {"modelName": m, **dict(zip(_TOKENS, v[:4])), "cost": float(v[4])}
        for m, v in sorted(models.items(), key=lambda kv: (-kv[1][4], kv[0]))]
    return row


def _totals(rows: list[dict]) -> dict:
    """ccusage's ``totals``; also drops the rows' exact-cost helper key."""
    t = {k: sum(r[k] for r in rows) for k in _TOKENS}
    t["totalTokens"] = sum(t.values())
    t["totalCost"] = float(sum((r.pop("_cost") for r in rows), Decimal(0)))
    return t


# -- sessions -----------------------------------------------------------------------------------
def session_report(store, *, since=None, until=None, timezone=None, mode: str = "auto",
                   order: str = "asc", session_id: str | None = None, **filters) -> dict:
    """``{"sessions": [...], "totals": {...}}``: one row per (project, session), in ccusage's
    order (by ``project/session``). ``since``/``until`` pick sessions by the day of their last
    activity."""
    desc = _check_order(order)
    f, where, params = _where(None, None, timezone, **filters)
    day_filter = Filter.build(since=since, until=until, timezone=timezone)
    if session_id is not None:
        where += " AND session_id = ?"
        params.append(session_id)
    sql = f"""
        SELECT project, session_id, {_NAMED_MODEL} AS m,
               {_SUMS_SQL.format(cost=cost_sql(mode))}, min(started_at), max(started_at)
        FROM requests WHERE {where} GROUP BY ALL
    """
    with store.read() as con:
        rows = con.execute(sql, params).fetchall()
    sessions: dict[tuple, list] = {}
    for project, sid, model, inp, out, cw, cr, cost, first, last in rows:
        sessions.setdefault((project, sid), []).append((model, inp, out, cw, cr, cost, first, last))
    out = []
    for (project, sid), parts in sessions.items():
        first = min(p[6] for p in parts)
        last = max(p[7] for p in parts)
        if day_filter.since is not None and last < day_filter.since:
            continue
        if day_filter.until is not None and last >= day_filter.until:
            continue
        head = {"sessionId": sid if sid is not None else "unknown",
                "projectPath": project if project is not None else "Unknown Project",
                "firstActivity": iso_ms(first), "lastActivity": iso_ms(last)}
        row = _summary(head, [p[:7] for p in parts])
        out.append((f"{row['projectPath']}/{row['sessionId']}", row))
    out.sort(key=lambda x: x[0], reverse=desc)
    rows_out = [r for _, r in out]
    return {"sessions": rows_out, "totals": _totals(rows_out)}


def iso_ms(t: datetime) -> str:
    """ccusage's timestamp form: UTC, milliseconds, ``Z``."""
    t = t.astimezone(dt_timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


# -- 5-hour blocks ------------------------------------------------------------------------------
def blocks_report(store, *, since=None, until=None, timezone=None, mode: str = "auto",
                  order: str = "asc", active: bool = False, recent: bool = False,
                  session_hours: float = BLOCK_HOURS, now: datetime | None = None,
                  **filters) -> dict:
    """``{"blocks": [...]}``: ccusage's billing blocks.

    A block starts at the hour (UTC) of its first message and lasts ``session_hours``; the next
    message more than that after the block's start, or after the previous message, opens a new
    block, and a silence longer than that is shown as a gap block. The active block (the last
    message less than ``session_hours`` ago and the block not yet over) has a burn rate and a
    projection to its end. ``since``/``until`` pick blocks by the day they start.
    """
    desc = _check_order(order)
    if session_hours <= 0:
        raise QueryError("session_hours must be positive")
    tz = zone(timezone)
    _, where, params = _where(None, None, timezone, **filters)
    now = now or datetime.now(dt_timezone.utc)
    length = int(session_hours * _HOUR_MS)
    with store.read() as con:
        models = [r[0] for r in con.execute(
            f"SELECT DISTINCT {_NAMED_MODEL} FROM requests WHERE {where} "
            f"AND {_NAMED_MODEL} IS NOT NULL ORDER BY 1", params).fetchall()]
        cols = con.execute(f"""
            SELECT epoch_ms(started_at) AS t, coalesce(list_position(?, {_NAMED_MODEL}), 0) AS m,
                   coalesce(input_tokens, 0) AS i, coalesce(output_tokens, 0) AS o,
                   coalesce(cache_write_tokens, 0) AS w, coalesce(cache_read_tokens, 0) AS r,
                   coalesce({cost_sql(mode)}, 0)::DOUBLE AS c
            FROM requests WHERE {where} AND started_at IS NOT NULL
            ORDER BY t, log_file, log_line  -- ties in ccusage's reading order
        """, [models] + params).fetchnumpy()
    spans = block_spans(cols["t"], length)
    stats = _block_stats(cols, spans, models)
    now_ms = int(now.timestamp() * 1000)
    blocks: list[dict] = []
    previous_last = None
    for (start, first, last), st in zip(spans, stats):
        if previous_last is not None and first - previous_last > length:
            blocks.append(_gap(previous_last + length, first))
        blocks.append(_block(start, first, last, length, st, now_ms))
        previous_last = last
    day = Filter.build(since=since, until=until, timezone=tz.key)

    def keep(b: dict) -> bool:
        t = datetime.fromisoformat(b["startTime"].replace("Z", "+00:00"))
        return ((day.since is None or t.astimezone(tz).date() >= day.since.date())
                and (day.until is None or t.astimezone(tz).date() < day.until.date()))
    blocks = [b for b in blocks if keep(b)]
    if active:
        blocks = [b for b in blocks if b["isActive"]]
    elif recent:
        cutoff = now - timedelta(days=3)
        blocks = [b for b in blocks if b["isActive"] or
                  datetime.fromisoformat(b["startTime"].replace("Z", "+00:00")) >= cutoff]
    blocks.sort(key=lambda b: b["startTime"], reverse=desc)  # a gap starts after its block's hour
    return {"blocks": blocks}


def block_spans(times: list[int], length_ms: int) -> list[tuple[int, int, int]]:
    """``(block start, first, last)`` epoch-ms of each block over sorted message times.

    Inside ``[start, start + length]`` no silence can exceed ``length``, so each block ends at
    the first message past ``start + length``: one binary search per block, not a loop per row.
    """
    search = getattr(times, "searchsorted", None)  # a numpy array: search in C
    spans = []
    i, n = 0, len(times)
    while i < n:
        t = int(times[i])
        start = t - t % _HOUR_MS
        if search is not None:
            j = max(int(search(start + length_ms, side="right")), i + 1)
        else:
            j = bisect.bisect_right(times, start + length_ms, i)
        spans.append((start, t, int(times[j - 1])))
        i = j
    return spans


def _block_stats(cols: dict, spans, models: list[str]) -> list[tuple]:
    """Per block: entries, tokens, cost and models in order of first use, from the rows sorted
    by time (numpy: one reduction per column, not a loop per row)."""
    import numpy as np

    if not spans:
        return []
    bounds = np.searchsorted(cols["t"], np.array([first for _, first, _ in spans]), side="left")
    ends = list(bounds[1:]) + [len(cols["t"])]
    sums = {k: np.add.reduceat(cols[k], bounds) for k in ("i", "o", "w", "r", "c")}
    out = []
    for n, (lo, hi) in enumerate(zip(bounds, ends)):
        codes = cols["m"][lo:hi]
        codes = codes[codes > 0]
        uniq, first = np.unique(codes, return_index=True)
        used = [models[int(c) - 1] for c in uniq[np.argsort(first)]]
        out.append((int(hi - lo), int(sums["i"][n]), int(sums["o"][n]), int(sums["w"][n]),
                    int(sums["r"][n]), float(sums["c"][n]), used))
    return out


def _ms_iso(ms: int) -> str:
    return iso_ms(datetime.fromtimestamp(ms / 1000, dt_timezone.utc))


def _block(start: int, first: int, last: int, length: int, st: tuple, now_ms: int) -> dict:
    entries, inp, outp, cw, cr, cost, models = st
    end = start + length
    total = inp + outp + cw + cr
    is_active = 0 <= now_ms - last < length and now_ms < end
    burn = projection = None
    if is_active and last > first:
        minutes = (last - first) / 60_000
        burn = {"tokensPerMinute": total / minutes,
                "tokensPerMinuteForIndicator": (inp + outp) / minutes,
                "costPerHour": cost / minutes * 60}
        remaining = round(max(end - now_ms, 0) / 60_000)
        projection = {"totalTokens": round(total + burn["tokensPerMinute"] * remaining),
                      "totalCost": round(cost + burn["costPerHour"] / 60 * remaining, 2),
                      "remainingMinutes": remaining}
    return {"id": _ms_iso(start), "startTime": _ms_iso(start), "endTime": _ms_iso(end),
            "actualEndTime": _ms_iso(last), "isActive": is_active, "isGap": False,
            "entries": entries,
            "tokenCounts": {"inputTokens": inp, "outputTokens": outp,
                            "cacheCreationInputTokens": cw, "cacheReadInputTokens": cr},
            "totalTokens": total, "costUSD": cost, "models": models,
            "burnRate": burn, "projection": projection}


def _gap(start: int, end: int) -> dict:
    return {"id": f"gap-{_ms_iso(start)}", "startTime": _ms_iso(start), "endTime": _ms_iso(end),
            "actualEndTime": None, "isActive": False, "isGap": True, "entries": 0,
            "tokenCounts": {"inputTokens": 0, "outputTokens": 0, "cacheCreationInputTokens": 0,
                            "cacheReadInputTokens": 0},
            "totalTokens": 0, "costUSD": 0, "models": [], "burnRate": None, "projection": None}
