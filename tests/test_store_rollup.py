"""The flusher's 15-minute rollup stays equal to a recomputation from ``requests``."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

import llmlab
from llmlab.store import Store, UsageRecord, rollup

T0 = datetime(2026, 3, 20, tzinfo=timezone.utc)  # spans the March DST changes in EU and US


def _records(n: int, seed: int, prefix: str) -> list[UsageRecord]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        model, provider = rng.choice([("gpt-4o", "openai"), ("claude-haiku-4-5", "anthropic"),
                                      ("local-llm", None)])
        out.append(UsageRecord(
            request_id=f"{prefix}-{i}", source=rng.choice(["proxy", "claude-code"]),
            started_at=T0 + timedelta(seconds=rng.randrange(0, 20 * 86400)),
            model=model, provider=provider, project=rng.choice(["a", "b", None]),
            client=rng.choice(["x", None]), status_code=rng.choice([200, 200, 200, 429]),
            input_tokens=rng.randrange(0, 5000), output_tokens=rng.randrange(0, 900),
            cache_read_tokens=rng.randrange(0, 100), cache_write_tokens=0, reasoning_tokens=0,
            duration_ms=rng.choice([None, 120.5, 900.0]),
            cost_usd=None if model == "local-llm" else Decimal(rng.randrange(1, 10**6)) / 10**9,
        ).finalize_totals())
    return out


def _rollup_table(store: Store) -> dict[str, list[tuple]]:
    """Every grain's table, with key numbers replaced by what they stand for."""
    with store.read() as con:
        return {table: con.execute(
            "SELECT q, source, model, provider, project, client, requests, errors, input_tokens, "
            "output_tokens, cache_read_tokens, total_tokens, cost_usd, unpriced, sum_duration_ms, "
            f"n_duration FROM {table} JOIN _llmlab_rollup_keys USING (key) ORDER BY ALL"
        ).fetchall() for _, table in rollup.GRAINS}


def test_incremental_rollup_equals_a_rebuild(store):
    for k in range(4):  # several flushes touching the same buckets again
        for r in _records(300, seed=k, prefix=f"b{k}"):
            store.record(r)
        if k == 2:
            store.record(_records(1, seed=0, prefix="b0")[0])  # a duplicate: must not count
        store.flush()
    incremental = _rollup_table(store)
    with store.read() as con:
        assert rollup.is_fresh(con)
        for _, table in rollup.GRAINS:
            # One row per (bucket, key): merging keeps the table as small as the data allows.
            assert con.execute(f"SELECT count(*) = count(DISTINCT (q, key)) FROM {table}").fetchall()[0][0]
            assert con.execute(f"SELECT sum(requests) FROM {table}").fetchall()[0][0] == 1200
        sizes = [con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for _, t in rollup.GRAINS]
    assert sizes[0] > sizes[1] > sizes[2] > 0
    with store.write() as con:
        rollup.rebuild(con)
    assert _rollup_table(store) == incremental


def _fresh(store: Store) -> bool:
    with store.read() as con:
        return rollup.is_fresh(con)


def _same_answers(store: Store) -> None:
    fast, raw = llmlab.open(store.home), llmlab.open(store.home)
    raw.use_rollup = False
    for call in (lambda lab: lab.by_model(), lambda lab: lab.daily(timezone="Asia/Kolkata"),
                 lambda lab: lab.totals(source="claude-code")):
        assert call(fast).equals(call(raw))


@pytest.fixture
def filled(store):
    for r in _records(200, seed=1, prefix="a"):
        store.record(r)
    store.flush()
    assert _fresh(store)
    return store


def test_a_write_lease_that_changes_nothing_keeps_it_fresh(filled):
    with filled.write() as con:
        con.execute("CREATE TABLE IF NOT EXISTS my_notes (x INTEGER)")
    assert _fresh(filled)


def test_an_insert_that_bypasses_it_is_noticed_and_repaired(filled):
    lab = llmlab.open(filled.home)
    before = lab.by_model().set_index("model").loc["gpt-4o", "input_tokens"]
    with filled.write() as con:  # a bulk writer that bypasses the journal and the rollup
        con.execute("""INSERT INTO requests (request_id, source, started_at, model, provider,
                       input_tokens, total_tokens, cost_usd)
                       VALUES ('direct-1', 'proxy', '2026-03-21 10:00:00+00', 'gpt-4o', 'openai',
                               1000000, 1000000, 5)""")
    assert not _fresh(filled)
    with filled.read() as con:
        from llmlab.filters import Filter

        assert rollup.preaggregate(con, Filter.build(), ["model"]) is None  # not trusted now
    after = lab.by_model().set_index("model").loc["gpt-4o", "input_tokens"]
    assert after == before + 1_000_000  # still right: read from requests
    filled.flush()  # nothing journaled, but the stale rollup is rebuilt
    assert _fresh(filled)
    _same_answers(filled)


def test_an_update_in_place_is_noticed(filled):
    """What the Claude Code importer does when a better line of a stored message turns up."""
    with filled.write() as con:
        con.execute("UPDATE requests SET cost_usd = coalesce(cost_usd, 0) * 6 + 0.01, "
                    "model = model || '-fast' WHERE request_id = 'a-1'")
    assert not _fresh(filled)
    _same_answers(filled)
    filled.flush()
    assert _fresh(filled)
    _same_answers(filled)


def test_a_writer_that_keeps_it_in_step_keeps_it_fresh(filled):
    with filled.write() as con:
        # The buckets of every row changed: old times of updated/deleted rows, then new times.
        con.execute("CREATE TEMP TABLE touched AS SELECT started_at FROM requests "
                    "WHERE request_id IN ('a-3', 'a-4', 'a-5')")
        con.execute("UPDATE requests SET started_at = started_at + INTERVAL 3 DAY, "
                    "total_tokens = total_tokens + 1 WHERE request_id IN ('a-3', 'a-4')")
        con.execute("DELETE FROM requests WHERE request_id = 'a-5'")
        con.execute("""INSERT INTO requests (request_id, source, started_at, model, total_tokens)
                       VALUES ('direct-2', 'claude-code', '2026-03-22 10:00:00+00', 'x', 7)""")
        con.execute("INSERT INTO touched SELECT started_at FROM requests "
                    "WHERE request_id IN ('a-3', 'a-4', 'direct-2')")
        rollup.touch(con, "touched")
    assert _fresh(filled)
    incremental = _rollup_table(filled)
    from llmlab.store.lease import write_lease

    with write_lease(filled.db_path) as con:
        rollup.rebuild(con)
    assert _rollup_table(filled) == incremental
    _same_answers(filled)


def test_invalidate_and_the_cli_rebuild(filled):
    import subprocess
    import sys

    with filled.write() as con:
        rollup.invalidate(con)
    assert not _fresh(filled)
    cli = [sys.executable, "-c", "import sys; from llmlab.cli import main; sys.exit(main())"]
    proc = subprocess.run(cli + ["flush", "--home", str(filled.home), "--rebuild-rollup"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "rebuilt the rollup" in proc.stdout
    assert _fresh(filled)
    _same_answers(filled)


def test_refresh_is_a_no_op_when_fresh_and_a_rebuild_when_not(filled):
    from llmlab.store.lease import write_lease

    with write_lease(filled.db_path) as con:  # the flusher's kind of lease: no dirty marking
        assert rollup.refresh(con) is False
        con.execute("DELETE FROM requests WHERE request_id = 'a-1'")
        assert rollup.refresh(con) is True
        assert rollup.is_fresh(con)


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata",
                                "Asia/Kathmandu", "Australia/Lord_Howe", "Pacific/Chatham",
                                "America/St_Johns"])
def test_offset_case_matches_zoneinfo_at_every_quarter(tz):
    zone = ZoneInfo(tz)
    lo = int(datetime(2025, 1, 1, tzinfo=timezone.utc).timestamp()) // 900
    hi = int(datetime(2027, 1, 1, tzinfo=timezone.utc).timestamp()) // 900
    case = rollup.offset_case(zone, lo, hi)
    assert case is not None
    import duckdb

    con = duckdb.connect()
    got = con.execute(f"SELECT q, {case} FROM range({lo}, {hi}) t(q)").fetchall()
    for q, off in got[:: 7]:  # every 7th quarter: all transitions' neighbourhoods are covered
        want = datetime.fromtimestamp(q * 900, timezone.utc).astimezone(zone).utcoffset()
        assert off == want.total_seconds(), (tz, q)


def test_offset_case_refuses_offsets_that_are_not_whole_quarters():
    # Liberia kept -0:44:30 until 1972: local days there are not unions of UTC quarters.
    lo = int(datetime(1971, 6, 1, tzinfo=timezone.utc).timestamp()) // 900
    hi = int(datetime(1972, 6, 1, tzinfo=timezone.utc).timestamp()) // 900
    assert rollup.offset_case(ZoneInfo("Africa/Monrovia"), lo, hi) is None


@pytest.mark.parametrize("kwargs,table", [
    (dict(), "_llmlab_rollup_day"),
    (dict(since="2026-03-22"), "_llmlab_rollup_day"),
    (dict(since="2026-03-22", timezone="America/New_York"), "_llmlab_rollup_hour"),
    (dict(since="2026-03-22", timezone="Asia/Kolkata"), "_llmlab_rollup"),
    (dict(since="2026-03-22T10:15:00"), "_llmlab_rollup"),
])
def test_the_coarsest_exact_grain_is_used(filled, kwargs, table):
    from llmlab.filters import Filter

    flt = Filter.build(**kwargs)
    with filled.read() as con:
        sql, _ = rollup.preaggregate(con, flt, ["model"])
        assert f"FROM {table} " in sql
        sql, _ = rollup.preaggregate(con, flt, [], flt.tz)
        assert f"FROM {table} " in sql
    _same_answers(filled)


def test_a_local_day_needs_finer_buckets_than_the_filter(filled):
    """since on a UTC day, but days counted in Kolkata: the day table cannot say which half."""
    from llmlab.filters import Filter

    flt = Filter.build(since=datetime(2026, 3, 22, tzinfo=timezone.utc), timezone="Asia/Kolkata")
    with filled.read() as con:
        sql, _ = rollup.preaggregate(con, flt, [], flt.tz)
    assert "FROM _llmlab_rollup " in sql
