"""SIGKILL at random points while journaling and while flushing loses nothing, doubles nothing.

Each round starts two real writer processes on the same store: one is killed after a random
number of journaled records (mid-append), the other shortly after it announced a flush (mid-seal,
mid-transaction, mid-commit or just after). The next flush, run by this test process, must hold
every record either writer reported as journaled exactly once, with its fields intact.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from llmlab.store import Store

WORKER = Path(__file__).with_name("store_workers.py")
ROUNDS = 12  # two kills a round


@dataclass
class Victim:
    prefix: str
    journaled: list[str] = field(default_factory=list)
    mid_flush: bool = False
    flush_seconds: list[float] = field(default_factory=list)


def _spawn(home: Path, prefix: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(WORKER), "writer", "--home", str(home), "--prefix", prefix, *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
    )


def _kill_while_journaling(home: Path, prefix: str, after: int) -> Victim:
    v = Victim(prefix)
    proc = _spawn(home, prefix, "--count", "100000")
    for line in proc.stdout:
        if line.startswith("J "):
            v.journaled.append(line.split()[1])
            if len(v.journaled) == after:
                os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    return v


def _kill_while_flushing(home: Path, prefix: str, flush_every: int, nth_flush: int,
                         rng: random.Random, typical_flush_s: float) -> Victim:
    v = Victim(prefix)
    proc = _spawn(home, prefix, "--count", "100000", "--flush-every", str(flush_every))
    flushes = 0
    started = 0.0
    in_flush = False
    for line in proc.stdout:
        if line.startswith("J "):
            v.journaled.append(line.split()[1])
        elif line.startswith("F+"):
            flushes += 1
            in_flush, started = True, time.monotonic()
            if flushes == nth_flush:
                # Somewhere inside the flush (or just after it): seal, lease, ingest, commit, delete.
                threading.Timer(rng.uniform(0, 1.3 * typical_flush_s), os.kill,
                                (proc.pid, signal.SIGKILL)).start()
        elif line.startswith("F-"):
            in_flush = False
            v.flush_seconds.append(time.monotonic() - started)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    v.mid_flush = in_flush
    return v


def _check_round(store: Store, victims: list[Victim]) -> None:
    result = store.flush()
    assert not list(store.journal_dir.glob("*.active")), "a dead writer's segment was not sealed"
    assert not list(store.journal_dir.glob("*.jsonl")), "a sealed segment was not ingested"
    with store.read() as con:
        total, distinct = con.execute(
            "SELECT count(*), count(DISTINCT request_id) FROM requests").fetchone()
        assert total == distinct
        for v in victims:
            rows = con.execute(
                "SELECT request_id, input_tokens, output_tokens, total_tokens, cost_usd, "
                "json_extract(metadata, '$.seq')::BIGINT FROM requests WHERE project = ?",
                [v.prefix]).fetchall()
            stored = {r[0] for r in rows}
            journaled = set(v.journaled)
            assert len(journaled) == len(v.journaled)
            missing = journaled - stored
            assert not missing, f"{v.prefix}: journaled but lost: {sorted(missing)[:5]} ({result})"
            # At most the one record whose append was under way when the kill landed may be extra.
            in_flight = {f"{v.prefix}-{len(v.journaled)}"}
            assert stored - journaled <= in_flight
            for rid, inp, out, tot, cost, seq in rows:
                n = int(rid.rsplit("-", 1)[1])
                assert (inp, out, tot, cost, seq) == (n, 2 * n, 3 * n, Decimal(n) / 10**6, n)


@pytest.mark.slow
def test_sigkill_while_journaling_and_flushing_loses_nothing(tmp_path):
    home = tmp_path / "store"
    store = Store(home)
    store.migrate()
    rng = random.Random(20261031)
    typical_flush_s = 0.05
    mid_flush_kills = 0
    for rnd in range(ROUNDS):
        out: dict[str, Victim] = {}
        journaling = threading.Thread(target=lambda: out.__setitem__(
            "j", _kill_while_journaling(home, f"j{rnd}", rng.randint(1, 600))))
        flushing = threading.Thread(target=lambda: out.__setitem__(
            "f", _kill_while_flushing(home, f"f{rnd}", rng.randint(20, 200), rng.randint(1, 3),
                                      rng, typical_flush_s)))
        journaling.start()
        flushing.start()
        journaling.join()
        flushing.join()
        victims = [out["j"], out["f"]]
        if out["f"].flush_seconds:
            typical_flush_s = max(out["f"].flush_seconds)
        mid_flush_kills += out["f"].mid_flush
        _check_round(store, victims)
    # The kills were really spread over flushes, not only between them.
    assert mid_flush_kills >= ROUNDS // 4, f"only {mid_flush_kills} kills landed inside a flush"
