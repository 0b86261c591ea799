"""Pre-aggregates of ``requests``, kept by the flusher, read by the query helpers.

Summing every column of millions of rows takes DuckDB on two cores several hundred milliseconds;
the dashboard asks for daily series and per-model tables all the time. So the flusher keeps, in
the same transaction that inserts the records:

    _llmlab_rollup_keys   key -> (source, model, provider, project, client): one row per combination
    _llmlab_rollup        (q, key) -> the additive metrics of the calls that started in UTC
                          quarter-hour q (epoch seconds // 900) with that combination
    _llmlab_rollup_hour   the same per UTC hour (epoch seconds // 3600)
    _llmlab_rollup_day    the same per UTC day (epoch seconds // 86400)
    _llmlab_rollup_state  covered: how many rows of ``requests`` the rollup reflects;
                          dirty: someone may have changed ``requests`` behind its back

Every UTC offset in use is a multiple of 15 minutes, so local days, weeks and months are exact
unions of quarters -- of hours in whole-hour zones, of days in UTC. The helpers use the coarsest
table that answers exactly: filters and groups on the key columns, ``since``/``until`` on its
bucket boundaries, a timezone whose offsets (over the data's range) are whole buckets, and a
fresh rollup. Anything else reads ``requests`` as before.

Fresh means not ``dirty`` and ``covered`` equal to the row count of ``requests``. Writers other
than the flusher take ``Store.write()``, which marks the rollup dirty for the length of the
block; at its end the mark is lifted again if the block kept the rollup in step itself
(:func:`add` for inserted rows, :func:`touch` for the buckets of rows it inserted, updated or
deleted) or if a fingerprint of ``requests`` (row count, token, cost and status sums) did not
change. Otherwise it stays dirty: the helpers read ``requests`` (right, only slower) and the
next flush rebuilds the rollup. Someone who edits ``requests`` with a plain DuckDB connection
should call :func:`invalidate` (or run ``llmlab flush --rebuild-rollup``).
"""

from __future__ import annotations

import contextlib
import warnings
import weakref
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import duckdb

QUARTER_S = 900
# (bucket seconds, table), finest first; each coarser one is built from the one before.
GRAINS = ((900, "_llmlab_rollup"), (3600, "_llmlab_rollup_hour"), (86400, "_llmlab_rollup_day"))
KEY_COLUMNS = ("source", "model", "provider", "project", "client")
# Partial aggregates, in the order and with the names the query helpers re-aggregate.
METRIC_COLUMNS = (
    "requests", "errors", "input_tokens", "output_tokens", "cache_read_tokens",
    "cache_write_tokens", "reasoning_tokens", "total_tokens", "cost_usd", "unpriced",
    "sum_duration_ms", "n_duration",
)
# The columns of ``requests`` the rollup is computed from (what the flusher hands to :func:`add`).
SOURCE_COLUMNS = (
    "started_at", *KEY_COLUMNS, "status_code", "error_type", "input_tokens", "output_tokens",
    "cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "total_tokens", "cost_usd",
    "duration_ms",
)
_Q_SQL = "epoch_us(started_at) // 900000000"
_FROM_ROWS_SQL = f"""
    {_Q_SQL} AS q,
    count(*)::BIGINT AS requests,
    count(*) FILTER (WHERE status_code >= 400 OR error_type IS NOT NULL)::BIGINT AS errors,
    coalesce(sum(input_tokens), 0)::BIGINT AS input_tokens,
    coalesce(sum(output_tokens), 0)::BIGINT AS output_tokens,
    coalesce(sum(cache_read_tokens), 0)::BIGINT AS cache_read_tokens,
    coalesce(sum(cache_write_tokens), 0)::BIGINT AS cache_write_tokens,
    coalesce(sum(reasoning_tokens), 0)::BIGINT AS reasoning_tokens,
    coalesce(sum(total_tokens), 0)::BIGINT AS total_tokens,
    coalesce(sum(cost_usd), 0)::DECIMAL(38,12) AS cost_usd,
    count(*) FILTER (WHERE cost_usd IS NULL AND source IS NOT NULL)::BIGINT AS unpriced,
    coalesce(sum(duration_ms), 0)::DOUBLE AS sum_duration_ms,
    count(duration_ms)::BIGINT AS n_duration
"""
_RESUM_SQL = ",\n    ".join(
    f"sum({c})::{'DECIMAL(38,12)' if c == 'cost_usd' else 'DOUBLE' if c == 'sum_duration_ms' else 'BIGINT'} AS {c}"
    for c in METRIC_COLUMNS)
_KEY_MATCH = " AND ".join(f"n.{c} IS NOT DISTINCT FROM k.{c}" for c in KEY_COLUMNS)
_KEYS = ", ".join(KEY_COLUMNS)


# -- keeping it ------------------------------------------------------------------------------

def create(con: duckdb.DuckDBPyConnection) -> None:
    """The rollup tables (migration m003_rollup), filled from what ``requests`` already holds."""
    con.execute(f"""CREATE TABLE _llmlab_rollup_keys (
        key INTEGER PRIMARY KEY, {', '.join(f'{c} VARCHAR' for c in KEY_COLUMNS)})""")
    for _, table in GRAINS:
        con.execute(f"""CREATE TABLE {table} (
            q BIGINT NOT NULL, key INTEGER NOT NULL,
            requests BIGINT, errors BIGINT, input_tokens BIGINT, output_tokens BIGINT,
            cache_read_tokens BIGINT, cache_write_tokens BIGINT, reasoning_tokens BIGINT,
            total_tokens BIGINT, cost_usd DECIMAL(38,12), unpriced BIGINT,
            sum_duration_ms DOUBLE, n_duration BIGINT)""")
    con.execute("CREATE TABLE _llmlab_rollup_state (covered BIGINT NOT NULL, dirty BOOLEAN NOT NULL)")
    con.execute("INSERT INTO _llmlab_rollup_state VALUES (0, false)")
    rebuild(con)


def exists(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND table_name = '_llmlab_rollup_state'").fetchall()[0][0])


def is_fresh(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the rollup reflects ``requests`` (count(*) is read from metadata: ~1 ms)."""
    return bool(con.execute(
        "SELECT NOT dirty AND covered = (SELECT count(*) FROM requests) FROM _llmlab_rollup_state"
    ).fetchall()[0][0])


def invalidate(con: duckdb.DuckDBPyConnection) -> None:
    """Stop trusting the rollup until the next flush rebuilds it (after editing ``requests``)."""
    if exists(con):
        con.execute("UPDATE _llmlab_rollup_state SET dirty = true")
        state = _foreign.get(con)
        if state is not None:
            state[0] = False  # and Store.write() must not lift the mark at the end


def _fingerprint(con) -> tuple:
    return tuple(con.execute(
        "SELECT count(*), coalesce(sum(total_tokens), 0), coalesce(sum(cost_usd), 0), "
        "count(cost_usd), coalesce(sum(status_code), 0) FROM requests").fetchall()[0])


# Write leases other than the flusher's: [fresh before, fingerprint before, kept in step].
_foreign: "weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, list]" = weakref.WeakKeyDictionary()


def begin_write(con: duckdb.DuckDBPyConnection) -> None:
    """Called by ``Store.write()`` before the block: mark dirty, remember the starting point."""
    if not exists(con):
        return
    fresh = is_fresh(con)
    _foreign[con] = [fresh, _fingerprint(con) if fresh else None, False]
    con.execute("UPDATE _llmlab_rollup_state SET dirty = true")


def end_write(con: duckdb.DuckDBPyConnection) -> None:
    """Called by ``Store.write()`` after a block that did not raise: lift the mark if safe."""
    state = _foreign.pop(con, None)
    if state is None:
        return
    fresh_before, before, kept = state
    with contextlib.suppress(duckdb.Error):
        con.execute("ROLLBACK")  # a transaction the block left open is not ours to keep
    if fresh_before and (kept or _fingerprint(con) == before):
        con.execute("UPDATE _llmlab_rollup_state SET dirty = false, "
                    "covered = (SELECT count(*) FROM requests)")


def _kept_in_step(con) -> None:
    state = _foreign.get(con)
    if state is not None:
        state[2] = True


def _add_keys(con, relation: str) -> None:
    con.execute(f"""
        INSERT INTO _llmlab_rollup_keys
        SELECT (SELECT coalesce(max(key), 0) FROM _llmlab_rollup_keys) + row_number() OVER (), *
        FROM (SELECT DISTINCT {_KEYS} FROM {relation}
              EXCEPT SELECT {_KEYS} FROM _llmlab_rollup_keys)
    """)


def _coarser(con, into: str, grain: int, source: str, where: str = "TRUE") -> None:
    """Insert the sums of quarter rows of ``source`` into ``into`` per bucket of ``grain``."""
    con.execute(f"""
        INSERT INTO {into} BY NAME
        SELECT q * {QUARTER_S} // {grain} AS q, key, {_RESUM_SQL}
        FROM {source} WHERE {where} GROUP BY ALL ORDER BY q
    """)


def rebuild(con: duckdb.DuckDBPyConnection) -> None:
    """Recompute the whole rollup from ``requests``."""
    for _, table in GRAINS:
        con.execute(f"DELETE FROM {table}")
    con.execute("DELETE FROM _llmlab_rollup_keys")
    _add_keys(con, "requests")
    con.execute(f"""
        INSERT INTO _llmlab_rollup BY NAME
        SELECT key, {_FROM_ROWS_SQL} FROM (
          SELECT n.*, k.key FROM requests n JOIN _llmlab_rollup_keys k ON {_KEY_MATCH})
        GROUP BY ALL ORDER BY q
    """)
    for grain, table in GRAINS[1:]:
        _coarser(con, table, grain, "_llmlab_rollup")
    con.execute("UPDATE _llmlab_rollup_state SET dirty = false, "
                "covered = (SELECT count(*) FROM requests)")
    _kept_in_step(con)


def _recompute_coarser(con) -> None:
    """Rebuild the hour and day buckets over the quarters in ``_llmlab_rollup_touched``."""
    for grain, table in GRAINS[1:]:
        buckets = f"(SELECT DISTINCT q * {QUARTER_S} // {grain} FROM _llmlab_rollup_touched)"
        con.execute(f"DELETE FROM {table} WHERE q IN {buckets}")
        _coarser(con, table, grain, "_llmlab_rollup", f"q * {QUARTER_S} // {grain} IN {buckets}")


def touch(con: duckdb.DuckDBPyConnection, times: str) -> None:
    """Recompute the buckets of ``times`` (a relation with a ``started_at`` column) from ``requests``.

    For bulk writers: pass the start times of every row inserted, updated (old and new) or
    deleted in this write lease, before it ends; the rollup then stays fresh.
    """
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _llmlab_rollup_touched AS
                    SELECT DISTINCT {_Q_SQL} AS q FROM {times} WHERE started_at IS NOT NULL""")
    in_touched = f"{_Q_SQL.replace('started_at', 'n.started_at')} IN (SELECT q FROM _llmlab_rollup_touched)"
    con.execute("DELETE FROM _llmlab_rollup WHERE q IN (SELECT q FROM _llmlab_rollup_touched)")
    _add_keys(con, f"(SELECT {_KEYS} FROM requests n WHERE {in_touched})")
    con.execute(f"""
        INSERT INTO _llmlab_rollup BY NAME
        SELECT key, {_FROM_ROWS_SQL} FROM (
          SELECT n.*, k.key FROM requests n JOIN _llmlab_rollup_keys k ON {_KEY_MATCH}
          WHERE {in_touched})
        GROUP BY ALL ORDER BY q
    """)
    _recompute_coarser(con)
    con.execute("DROP TABLE _llmlab_rollup_touched")
    con.execute("UPDATE _llmlab_rollup_state SET covered = (SELECT count(*) FROM requests)")
    _kept_in_step(con)


def refresh(con: duckdb.DuckDBPyConnection) -> bool:
    """Rebuild the rollup if writes bypassed it; True when it did."""
    if exists(con) and not is_fresh(con):
        rebuild(con)
        return True
    return False


def _merge(con, table: str, delta: str) -> None:
    """Add ``delta`` (q, key, metrics) to ``table``, one row per (q, key) in the buckets touched."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE _llmlab_rollup_touched AS SELECT DISTINCT q FROM {delta}")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _llmlab_rollup_merged AS
        SELECT q, key, {_RESUM_SQL} FROM (
          SELECT * FROM {table} WHERE q IN (SELECT q FROM _llmlab_rollup_touched)
          UNION ALL BY NAME SELECT * FROM {delta})
        GROUP BY q, key ORDER BY q
    """)
    con.execute(f"DELETE FROM {table} WHERE q IN (SELECT q FROM _llmlab_rollup_touched)")
    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _llmlab_rollup_merged")
    con.execute("DROP TABLE _llmlab_rollup_touched")
    con.execute("DROP TABLE _llmlab_rollup_merged")


def add(con: duckdb.DuckDBPyConnection, rows) -> None:
    """Fold newly inserted rows (a relation name, or an Arrow table with SOURCE_COLUMNS) in."""
    relation = rows
    if not isinstance(rows, str):
        con.register("_llmlab_rollup_new", rows)
        relation = "_llmlab_rollup_new"
    try:
        n = con.execute(f"SELECT count(*) FROM {relation}").fetchall()[0][0]
        if not n:
            return
        _add_keys(con, relation)
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _llmlab_rollup_delta AS
            SELECT key, {_FROM_ROWS_SQL} FROM (
              SELECT n.*, k.key FROM {relation} n JOIN _llmlab_rollup_keys k ON {_KEY_MATCH})
            GROUP BY ALL
        """)
        for grain, table in GRAINS:
            if grain == QUARTER_S:
                _merge(con, table, "_llmlab_rollup_delta")
                continue
            con.execute(f"""CREATE OR REPLACE TEMP TABLE _llmlab_rollup_delta_g AS
                            SELECT q * {QUARTER_S} // {grain} AS q, key, {_RESUM_SQL}
                            FROM _llmlab_rollup_delta GROUP BY ALL""")
            _merge(con, table, "_llmlab_rollup_delta_g")
            con.execute("DROP TABLE _llmlab_rollup_delta_g")
        con.execute("DROP TABLE _llmlab_rollup_delta")
        con.execute("UPDATE _llmlab_rollup_state SET covered = covered + ?", [n])
        _kept_in_step(con)
    finally:
        if relation == "_llmlab_rollup_new":
            con.unregister("_llmlab_rollup_new")


def fetch_arrow(result) -> "object":
    """An Arrow table from an executed statement (DuckDB 1.x and 2.x name this differently)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "extra copy" notice: these are a flush's new rows only
        fetch = getattr(result, "to_arrow_table", None) or getattr(result, "fetch_arrow_table")
        return fetch()


# -- reading ---------------------------------------------------------------------------------

def offset_case(tz: ZoneInfo, q_min: int, q_max: int, grain: int = QUARTER_S) -> str | None:
    """SQL for the UTC offset (seconds) of ``tz`` at bucket ``q`` of ``grain`` seconds.

    Exact over [q_min, q_max]: a CASE over the zone's transitions in that range, found by
    stepping a day at a time and bisecting to the bucket. None when an offset or a transition
    does not fall on a bucket boundary (the zone cannot be answered at this grain).
    """
    def off(q: int) -> int:
        return int(datetime.fromtimestamp(q * grain, timezone.utc).astimezone(tz)
                   .utcoffset().total_seconds())

    step = max(1, 86400 // grain)
    branches: list[tuple[int, int]] = []  # (first q with the new offset, offset before it)
    current = off(q_min)
    q = q_min
    while q < q_max:
        nxt = min(q + step, q_max)
        if off(nxt) != current:
            lo, hi = q, nxt  # off(lo) == current, off(hi) != current
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if off(mid) == current:
                    lo = mid
                else:
                    hi = mid
            # The change must happen exactly at the start of bucket ``hi``.
            before = datetime.fromtimestamp(hi * grain - 1, timezone.utc).astimezone(tz)
            if int(before.utcoffset().total_seconds()) != current:
                return None
            branches.append((hi, current))
            current = off(hi)
            q = hi
        else:
            q = nxt
    if any(o % grain for o in [o for _, o in branches] + [current]):
        return None
    if not branches:
        return str(current)
    whens = " ".join(f"WHEN q < {start} THEN {o}" for start, o in branches)
    return f"CASE {whens} ELSE {current} END"


def _aligned(dt: datetime | None, grain: int) -> bool:
    return dt is None or dt.timestamp() % grain == 0


def preaggregate(con: duckdb.DuckDBPyConnection, flt, groups: list[str],
                 period_tz: ZoneInfo | None = None) -> tuple[str, list] | None:
    """SQL (and its parameters) for the partial aggregates the helpers re-aggregate, or None.

    Columns: ``q`` (only with ``period_tz``: a quarter-hour inside each local day), then
    ``groups``, then METRIC_COLUMNS -- the same shape the helpers compute from ``requests``.
    None when the rollup cannot answer exactly (see the module docstring).
    """
    if any(g not in KEY_COLUMNS for g in groups) or any(c not in KEY_COLUMNS for c in flt.equals):
        return None
    try:  # one query, not two: a store from before m003 has no state table
        if not is_fresh(con):
            return None
    except duckdb.CatalogException:
        return None
    key_where, params = "", []
    if flt.equals:
        from ..filters import Filter

        sql, params = Filter(equals=flt.equals).sql()
        key_where = f" AND key IN (SELECT key FROM _llmlab_rollup_keys WHERE {sql})"
    for grain, table in reversed(GRAINS):  # the coarsest table that answers exactly
        if not (_aligned(flt.since, grain) and _aligned(flt.until, grain)):
            continue
        where = "TRUE" + key_where
        if flt.since is not None:
            where += f" AND q >= {int(flt.since.timestamp()) // grain}"
        if flt.until is not None:
            where += f" AND q < {int(flt.until.timestamp()) // grain}"
        planned = _plan(con, table, grain, where, params, groups, period_tz)
        if planned is not None:
            return planned
    return None


def _plan(con, table: str, grain: int, where: str, params: list, groups: list[str],
          period_tz: ZoneInfo | None) -> tuple[str, list] | None:
    by_key = bool(groups)
    key = ", key" if by_key else ""
    if period_tz is not None:
        lo, hi = con.execute(f"SELECT min(q), max(q) FROM {table} WHERE {where}", params).fetchall()[0]
        case = offset_case(period_tz, lo or 0, (hi or 0) + 1, grain)
        if case is None:
            return None
        # Group by local day; min(q) is a real bucket inside that day, which the helper turns
        # back into the local date (it expects quarter-hours).
        inner = (f"SELECT min(q) * {grain // QUARTER_S} AS q{key}, {_RESUM_SQL} FROM {table} "
                 f"WHERE {where} GROUP BY (q * {grain} + {case}) // 86400{key}")
        lead = "q, "
    else:
        inner = (f"SELECT {'key, ' if by_key else ''}{_RESUM_SQL} FROM {table} "
                 f"WHERE {where}{' GROUP BY key' if by_key else ''}")
        lead = ""
    if not by_key:
        return inner, params
    cols = ", ".join(f"k.{g} AS {g}" for g in groups)
    return (f"SELECT {lead}{cols}, {_RESUM_SQL} FROM ({inner}) a "
            f"JOIN _llmlab_rollup_keys k USING (key) GROUP BY ALL"), params
