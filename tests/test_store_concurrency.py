"""Two writer processes and three reader processes share one store for 30 seconds.

Writers journal continuously and flush themselves every half second; readers call
``lab.daily()`` in a loop. Every record lands exactly once, no reader raises, and no reader ever
sees the number of stored records go down.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from llmlab.store import Store

WORKER = Path(__file__).with_name("store_workers.py")
SECONDS = 30


@pytest.mark.slow
def test_two_writers_three_readers_for_30_seconds(tmp_path):
    home = tmp_path / "store"
    Store(home).migrate()  # readers open the store before the first flush
    cmd = [sys.executable, str(WORKER)]
    writers = {
        prefix: subprocess.Popen(
            cmd + ["writer", "--home", str(home), "--prefix", prefix, "--seconds", str(SECONDS),
                   "--flush-seconds", "0.5", "--pause", "0.002"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for prefix in ("alpha", "beta")
    }
    readers = [
        subprocess.Popen(cmd + ["reader", "--home", str(home), "--seconds", str(SECONDS)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    journaled: dict[str, list[str]] = {}
    flushes: dict[str, int] = {}
    for prefix, proc in writers.items():
        out, err = proc.communicate(timeout=SECONDS + 120)
        assert proc.returncode == 0, err
        lines = out.splitlines()
        journaled[prefix] = [line.split()[1] for line in lines if line.startswith("J ")]
        flushes[prefix] = sum(line.startswith("F- ") for line in lines)
        assert lines[-1] == f"DONE {len(journaled[prefix])}"
    for proc in readers:
        out, err = proc.communicate(timeout=SECONDS + 120)
        assert proc.returncode == 0, f"reader failed: {out}\n{err}"
        calls = int(out.split()[1])
        assert calls > 0

    store = Store(home)
    store.flush()  # whatever the writers' last flush left behind (normally nothing)
    with store.read() as con:
        rows = con.execute("SELECT project, request_id FROM requests").fetchall()
    stored = [rid for _, rid in rows]
    assert len(stored) == len(set(stored))
    for prefix, ids in journaled.items():
        assert len(ids) > 1000
        assert {rid for project, rid in rows if project == prefix} == set(ids)
        # The writers really flushed while the readers were reading.
        assert flushes[prefix] >= 10
    assert len(stored) == sum(len(ids) for ids in journaled.values())
