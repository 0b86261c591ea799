"""A foreign process holds usage.duckdb with a plain read-write connection for 10 seconds.

Meanwhile a writer process keeps journaling (its flushes meet the lock and leave the records in
the journal), a reader process gets the clear StoreLockedError naming the file and the holder's
PID after its bounded wait, and the CLI says the same and exits 2. After the release, everything
journaled is ingested exactly once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import llmlab
from llmlab.store import Store

WORKER = Path(__file__).with_name("store_workers.py")
HOLD_S = 10


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("llmlab")
    return [str(script)] if script.exists() else [sys.executable, "-c",
                                                  "import sys; from llmlab.cli import main; sys.exit(main())"]


@pytest.mark.slow
def test_a_foreign_holder_delays_ingestion_but_loses_nothing(tmp_path):
    home = tmp_path / "store"
    store = Store(home)
    store.migrate()
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, os, time
            con = duckdb.connect({str(store.db_path)!r})   # plain read-write, kept open
            con.execute("SELECT count(*) FROM requests").fetchall()
            print(os.getpid(), flush=True)
            time.sleep({HOLD_S})
            con.close()
            print("released", flush=True)
        """)], stdout=subprocess.PIPE, text=True)
    holder_pid = int(holder.stdout.readline())
    # The writer runs past the release, flushing every half second with a short bounded wait.
    writer = subprocess.Popen(
        [sys.executable, str(WORKER), "writer", "--home", str(home), "--prefix", "held",
         "--seconds", str(HOLD_S + 3), "--flush-seconds", "0.5", "--pause", "0.002",
         "--lock-timeout", "0.5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reader = subprocess.run(
        [sys.executable, str(WORKER), "locked_reader", "--home", str(home), "--lock-timeout", "1.5"],
        capture_output=True, text=True, timeout=60)
    env = dict(os.environ, LLMLAB_LOCK_TIMEOUT="1")
    cli = subprocess.run(_cli() + ["export", "--home", str(home), "--out", str(tmp_path / "x.csv")],
                         capture_output=True, text=True, timeout=60, env=env)
    pending = llmlab.Lab(store).pending()  # reads the journal folder only: works while locked
    holder_still_holding = holder.poll() is None

    # The reader waited its bounded time, then got the clear error, while the file was still held.
    assert holder_still_holding
    assert reader.returncode == 0, reader.stdout + reader.stderr
    first, message = reader.stdout.splitlines()[:2]
    _, pid, waited, elapsed = first.split()
    assert int(pid) == holder_pid
    assert float(waited) >= 1.5
    assert str(store.db_path) in message and f"process {holder_pid}" in message
    assert "journal" in message  # tells the user their records are safe meanwhile
    # The CLI says the same in one line and exits 2 (no traceback).
    assert cli.returncode == 2
    assert str(store.db_path) in cli.stderr and f"process {holder_pid}" in cli.stderr
    assert "Traceback" not in cli.stderr
    assert pending["segments"] >= 1 and pending["bytes"] > 0

    assert holder.wait(timeout=60) == 0
    out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err
    lines = out.splitlines()
    journaled = [line.split()[1] for line in lines if line.startswith("J ")]
    locked = [line for line in lines if line.startswith("L ")]
    ingested_by_writer = [line for line in lines if line.startswith("F- ")]
    assert len(journaled) > 500
    assert locked and all(str(store.db_path) in line for line in locked)  # flushes met the lock
    assert ingested_by_writer  # and went through after the release
    assert "Traceback" not in err

    store.flush()
    with store.read() as con:
        rows = con.execute("SELECT request_id FROM requests").fetchall()
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(journaled)
    assert store.backlog().segments == 0
