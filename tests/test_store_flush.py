"""Journal -> flush -> requests: round trip, exactly once, corrupt lines, dead writers' segments."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from llmlab.store import Store, UsageRecord
from llmlab.store.schema import COLUMN_NAMES

T0 = datetime(2026, 10, 5, 9, 30, tzinfo=timezone.utc)


def rec(i: int, **kw) -> UsageRecord:
    r = UsageRecord(
        request_id=f"r-{i}", source="proxy", started_at=T0 + timedelta(minutes=i),
        ended_at=T0 + timedelta(minutes=i, seconds=2), duration_ms=2000.0 + i, ttft_ms=150.5,
        endpoint="/v1/chat/completions", stream=bool(i % 2), status_code=200,
        model_requested="gpt-4o", model="gpt-4o-2024-08-06", provider="openai",
        api_base="https://api.openai.com/v1", input_tokens=100 + i, output_tokens=20 + i,
        cache_read_tokens=64, cache_write_tokens=0, cache_write_5m_tokens=0,
        cache_write_1h_tokens=0, reasoning_tokens=5, cost_usd=Decimal("0.001234567891") * (i + 1),
        pricing_source="litellm:gpt-4o", project="atlas", client="acme", user_id="maria",
        session_id="s1", key_id="k1", tags=["a", "b"], metadata={"notebook": "x.ipynb", "i": i},
    )
    for k, v in kw.items():
        setattr(r, k, v)
    return r.finalize_totals()


def stored(store: Store, where: str = "TRUE") -> list[dict]:
    with store.read() as con:
        cur = con.execute(f"SELECT * FROM requests WHERE {where} ORDER BY request_id")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]


def test_every_field_survives_the_round_trip(store):
    records = [rec(1, cost_usd=Decimal("1.23E-10")), rec(2, request_body={"messages": [{"role": "user", "content": "hé ✓"}]},
                      response_body={"choices": []}, error_message="line1\nline2 \"quoted\"",
                      started_at=datetime(2026, 10, 5, 11, 0))]  # naive: read as UTC
    for r in records:
        store.record(r)
    result = store.flush()
    assert (result.records, result.inserted, result.duplicates, result.corrupt_lines) == (2, 2, 0, 0)
    rows = stored(store)
    assert [r["request_id"] for r in rows] == ["r-1", "r-2"]
    for want, got in zip(records, rows):
        assert set(got) == set(COLUMN_NAMES)
        for name in COLUMN_NAMES:
            value = getattr(want, name)
            if name in ("metadata", "request_body", "response_body"):
                assert (json.loads(got[name]) if got[name] is not None else None) == value, name
            elif name == "started_at" and value.tzinfo is None:
                assert got[name] == value.replace(tzinfo=timezone.utc)
            else:
                assert got[name] == value, name
    assert rows[1]["request_body"] is not None and "hé ✓" in rows[1]["request_body"]


def test_flush_is_exactly_once(store):
    writer = store.journal()
    for i in range(5):
        writer.append(rec(i))
    writer.append(rec(3))  # the same record twice in one segment
    first = store.flush()
    assert (first.records, first.inserted, first.duplicates) == (6, 5, 1)
    # The same records journaled again (a retry, a copied segment) are skipped.
    for i in range(7):
        writer.append(rec(i))
    second = store.flush()
    assert (second.records, second.inserted, second.duplicates) == (7, 2, 5)
    assert store.flush().records == 0  # nothing left behind
    with store.read() as con:
        assert con.execute("SELECT count(*), count(DISTINCT request_id) FROM requests").fetchall() == [(7, 7)]
        flushes = con.execute("SELECT records, inserted, duplicates FROM _llmlab_flushes "
                              "ORDER BY flushed_at").fetchall()
    assert flushes == [(6, 5, 1), (7, 2, 5)]
    assert not list(store.journal_dir.iterdir())


def _segment(store: Store, name: str, data: bytes):
    store.journal_dir.mkdir(parents=True, exist_ok=True)
    path = store.journal_dir / name
    path.write_bytes(data)
    return path


def test_corrupt_lines_are_skipped_counted_and_logged(store, caplog):
    good = [rec(i).to_json_line() for i in range(6)]
    lines = [
        good[0],
        b'{"request_id": "torn", "source": "proxy", "started_at": "2026-10-0\n',  # torn write
        good[1],
        b"\xff\xfe not utf-8 \x80\n",  # a disk error
        good[2],
        b"[1, 2, 3]\n",  # JSON, but not an object
        b'{"source": "proxy", "started_at": "2026-10-05T10:00:00+00:00"}\n',  # no request_id
        b'{"request_id": "bad-time", "source": "proxy", "started_at": "yesterday"}\n',
        b"\n",  # blank lines are not records and not errors
        good[3],
        b"\x00\x00\x00\x00\n",  # zero-filled block after a crash
        good[4],
        good[5].rstrip(b"\n"),  # last line complete but without its newline
    ]
    seg = _segment(store, "otherhost-1-x-00000000.jsonl", b"".join(lines))
    clean = _segment(store, "otherhost-1-x-00000001.jsonl", rec(50).to_json_line())
    with caplog.at_level(logging.WARNING, logger="llmlab.store"):
        result = store.flush()
    assert result.corrupt_lines == 6
    assert (result.records, result.inserted) == (7, 7)
    ids = {r["request_id"] for r in stored(store)}
    assert ids == {f"r-{i}" for i in range(6)} | {"r-50"}
    warnings = [r.getMessage() for r in caplog.records if "corrupt journal line" in r.getMessage()]
    assert len(warnings) == 6 and all(seg.name in w for w in warnings)
    assert any("torn" in w for w in warnings)
    assert not seg.exists() and not clean.exists()  # ingested, so removed
    with store.read() as con:
        assert con.execute("SELECT corrupt_lines FROM _llmlab_flushes").fetchall() == [(6,)]
    # Never fatal: the store goes on working.
    store.record(rec(60))
    assert store.flush().inserted == 1


def test_both_parsers_store_identical_rows(tmp_path, monkeypatch):
    """A clean segment takes the fast path, one with a bad line the line-by-line path."""
    records = [rec(i, request_body={"q": i}, tags=[] if i % 3 else ["x"], cost_usd=None if i == 2 else
                   Decimal("0.000000000001") * i, stream=None if i == 4 else bool(i % 2))
               for i in range(8)]
    fast, slow = Store(tmp_path / "fast"), Store(tmp_path / "slow")
    _segment(fast, "h-1-x-00000000.jsonl", b"".join(r.to_json_line() for r in records))
    _segment(slow, "h-1-x-00000000.jsonl",
             b"".join(r.to_json_line() for r in records) + b'{"broken\n')
    flush_module = sys.modules["llmlab.store.flush"]
    real = flush_module._insert_fast
    spy = []
    monkeypatch.setattr(flush_module, "_insert_fast",
                        lambda con, segs: spy.append(real(con, segs)) or spy[-1])
    assert fast.flush().corrupt_lines == 0
    assert slow.flush().corrupt_lines == 1
    assert [s is not None for s in spy] == [True, False]
    assert stored(fast) == stored(slow)
    assert len(stored(fast)) == 8


def test_a_value_of_the_wrong_type_keeps_the_record(store):
    line = rec(1).to_json_line().replace(b'"input_tokens":101', b'"input_tokens":"lots"')
    assert b'"lots"' in line
    _segment(store, "h-1-x-00000000.jsonl", line + rec(2).to_json_line())
    result = store.flush()
    assert (result.inserted, result.corrupt_lines) == (2, 0)
    row = stored(store, "request_id = 'r-1'")[0]
    assert row["input_tokens"] is None and row["output_tokens"] == 21


def test_a_json_column_holding_text_that_is_not_json_keeps_the_record(store):
    line = json.loads(rec(1).to_json_line())
    line["metadata"] = "{not json"
    _segment(store, "h-1-x-00000000.jsonl", (json.dumps(line) + "\n").encode() + rec(2).to_json_line())
    result = store.flush()
    assert (result.inserted, result.corrupt_lines) == (2, 0)
    assert [r["metadata"] is None for r in stored(store)] == [True, False]


def test_large_backlogs_are_ingested_in_several_short_leases(store, monkeypatch):
    flush_module = sys.modules["llmlab.store.flush"]
    monkeypatch.setattr(flush_module, "MAX_LEASE_BYTES", 4096)
    writer = store.journal()
    for i in range(40):
        writer.append(rec(i))
        if i % 5 == 4:
            writer.seal()
    result = store.flush()
    assert result.inserted == 40
    with store.read() as con:
        leases = con.execute("SELECT count(*) FROM _llmlab_flushes").fetchall()[0][0]
    assert leases > 1


def test_a_dead_writers_open_segment_is_sealed_and_ingested(store, python):
    store.migrate()
    # A process that journals and dies without sealing (no atexit, like SIGKILL).
    code = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parent)!r})
        from test_store_flush import rec
        from llmlab.store import Store
        w = Store({str(store.home)!r}).journal()
        for i in range(100, 103):
            w.append(rec(i))
        os._exit(0)
    """)
    subprocess.run([python, "-c", code], check=True)
    active = list(store.journal_dir.glob("*.active"))
    assert len(active) == 1
    assert store.backlog().segments == 1 and store.backlog().bytes > 0
    assert store.flush().inserted == 3
    assert not list(store.journal_dir.iterdir())
    assert store.backlog().segments == 0


def test_a_live_writers_open_segment_is_left_alone(store, python):
    store.migrate()
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parent)!r})
        from test_store_flush import rec
        from llmlab.store import Store
        w = Store({str(store.home)!r}).journal()
        w.append(rec(200))
        print("journaled", flush=True)
        sys.stdin.readline()   # stay alive until told to exit; atexit seals the segment
    """)
    proc = subprocess.Popen([python, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "journaled"
        assert store.flush().inserted == 0  # still its writer's: not ours to seal
        assert len(list(store.journal_dir.glob("*.active"))) == 1
    finally:
        proc.communicate("\n", timeout=30)
    assert proc.returncode == 0
    assert list(store.journal_dir.glob("*.jsonl"))  # sealed by the writer on exit
    assert store.flush().inserted == 1


def test_flush_without_a_journal_does_nothing(tmp_path):
    result = Store(tmp_path / "never-used").flush()
    assert (result.segments, result.records) == (0, 0)


@pytest.mark.parametrize("bad", [b"", b"\n\n"])
def test_empty_segments_are_removed(store, bad):
    seg = _segment(store, "h-1-x-00000000.jsonl", bad)
    result = store.flush()
    assert (result.segments, result.records, result.corrupt_lines) == (1, 0, 0)
    assert not seg.exists()
