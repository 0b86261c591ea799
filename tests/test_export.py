"""Export to CSV and Parquet: the file holds exactly the selected rows of the store."""

from __future__ import annotations

import json

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from llmlab.errors import ConfigError, QueryError
from llmlab.export import export
from llmlab.store import Store
from llmlab.store.schema import COLUMN_NAMES, COLUMNS

BODIES = ("request_body", "response_body")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from test_query import make_records

    store = Store(tmp_path_factory.mktemp("export") / "store")
    for i, r in enumerate(make_records(600, seed=9)):
        if i % 50 == 0:
            r.request_body = {"messages": [{"role": "user", "content": f"q{i}, \"quoted\"\nline"}]}
            r.response_body = {"choices": [{"message": {"content": "ok"}}]}
        store.record(r)
    store.flush()
    return store


def _selection(store: Store, where: str, cols: list[str]) -> pd.DataFrame:
    with store.read() as con:
        return con.execute(f"SELECT {', '.join(cols)} FROM requests WHERE {where} "
                           "ORDER BY started_at, request_id").df()


def _differences(store: Store, where: str, cols: list[str], file_sql: str) -> int:
    """Rows in the selection but not in the file, plus rows in the file but not in the selection."""
    typed = ", ".join(f"CAST({c} AS {t}) AS {c}" for c, t in COLUMNS if c in cols)
    with store.read() as con:
        return con.execute(f"""
            WITH sel AS (SELECT {', '.join(cols)} FROM requests WHERE {where}),
                 f AS (SELECT {typed} FROM {file_sql})
            SELECT (SELECT count(*) FROM (SELECT * FROM sel EXCEPT ALL SELECT * FROM f))
                 + (SELECT count(*) FROM (SELECT * FROM f EXCEPT ALL SELECT * FROM sel))
        """).fetchall()[0][0]


CASES = [
    ({}, "TRUE"),
    ({"project": ["atlas", "research"], "since": "2026-10-20", "until": "2026-11-10"},
     "project IN ('atlas', 'research') AND started_at >= '2026-10-20 00:00:00+00' "
     "AND started_at < '2026-11-11 00:00:00+00'"),
    ({"model": "gpt-4o", "source": "proxy", "since": "2026-11-01", "timezone": "Asia/Kolkata"},
     "model = 'gpt-4o' AND source = 'proxy' AND started_at >= '2026-10-31 18:30:00+00'"),
]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("filters,where", CASES, ids=["all", "project+dates", "model+tz"])
def test_export_equals_the_selection(store, tmp_path, fmt, filters, where):
    out = tmp_path / f"out.{fmt}"
    n = export(store, out, fmt=fmt, **filters)
    cols = [c for c in COLUMN_NAMES if c not in BODIES]
    want = _selection(store, where, cols)
    assert n == len(want) > 0
    reader = (f"read_csv('{out}', header = true, all_varchar = true)" if fmt == "csv"
              else f"read_parquet('{out}')")
    if fmt == "csv":
        # CSV is text: cast back through DuckDB's own parsing, lists and JSON included.
        typed = {c: t for c, t in COLUMNS}
        casts = ", ".join(
            f"CAST({c} AS {typed[c]}) AS {c}" for c in cols)
        reader = f"(SELECT {casts} FROM {reader})"
    assert _differences(store, where, cols, reader) == 0
    if fmt == "parquet":
        table = pq.read_table(out)
        assert table.column_names == cols
        assert str(table.schema.field("cost_usd").type) == "decimal128(18, 12)"
        assert str(table.schema.field("started_at").type).startswith("timestamp[us, tz=")
        got = table.to_pandas()
    else:
        got = pd.read_csv(out)
        assert list(got.columns) == cols
    assert list(got.request_id) == list(want.request_id)  # ordered by time, then id


def test_bodies_are_left_out_unless_asked_for(store, tmp_path):
    plain, full = tmp_path / "plain.parquet", tmp_path / "full.parquet"
    export(store, plain, fmt="parquet")
    export(store, full, fmt="parquet", bodies=True)
    assert not set(BODIES) & set(pq.read_table(plain).column_names)
    table = pq.read_table(full).to_pandas()
    assert list(table.columns) == COLUMN_NAMES
    with_body = table[table.request_body.notna()]
    assert len(with_body) == 12
    body = json.loads(with_body.request_body.iloc[0])
    assert body["messages"][0]["content"].endswith('"quoted"\nline')
    assert _differences(store, "TRUE", COLUMN_NAMES, f"read_parquet('{full}')") == 0


def test_csv_with_bodies_round_trips_quotes_and_newlines(store, tmp_path):
    out = tmp_path / "full.csv"
    n = export(store, out, fmt="csv", bodies=True)
    got = pd.read_csv(out)
    assert len(got) == n
    bodies = got[got.request_body.notna()].request_body.map(json.loads)
    assert all("\n" in b["messages"][0]["content"] for b in bodies)


def test_an_empty_selection_writes_an_empty_file(store, tmp_path):
    out = tmp_path / "none.csv"
    assert export(store, out, fmt="csv", project="no-such-project") == 0
    assert pd.read_csv(out).empty
    out = tmp_path / "none.parquet"
    assert export(store, out, fmt="parquet", project="no-such-project") == 0
    assert pq.read_table(out).num_rows == 0


def test_bad_input(store, tmp_path):
    with pytest.raises(ConfigError, match="unknown export format 'xlsx'"):
        export(store, tmp_path / "x.xlsx", fmt="xlsx")
    with pytest.raises(QueryError, match="unknown filter 'colour'"):
        export(store, tmp_path / "x.csv", fmt="csv", colour="red")
    with pytest.raises(QueryError, match="after until"):
        export(store, tmp_path / "x.csv", fmt="csv", since="2026-11-02", until="2026-11-01")
    assert not (tmp_path / "x.csv").exists()


def test_a_path_with_a_quote_in_it(store, tmp_path):
    out = tmp_path / "it's here" / "usage.parquet"
    n = export(store, out, fmt="parquet", project="atlas")
    assert n == duckdb.sql(f"SELECT count(*) FROM read_parquet('{str(out).replace(chr(39), chr(39) * 2)}')"
                           ).fetchall()[0][0] > 0
