"""Processes for the store's multi-process tests (run as a script, never imported by pytest).

    python store_workers.py writer --home H --prefix P [--seconds S | --count N] [--flush-every K]
    python store_workers.py reader --home H --seconds S

Every line a worker prints is flushed at once, so the test knows exactly what happened before a
SIGKILL: ``J <request_id>`` after ``append`` returned (the record is journaled), ``F+`` before a
flush starts, ``F- <inserted>`` after it returned, ``L <message>`` when a flush met a lock, and
``DONE <n>`` at a clean end.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

EPOCH = datetime(2026, 9, 1, tzinfo=timezone.utc)


def make_record(prefix: str, seq: int):
    """A deterministic record, so the test can check every stored field came through intact."""
    from llmlab.store import UsageRecord

    started = EPOCH + timedelta(seconds=37 * seq)
    return UsageRecord(
        request_id=f"{prefix}-{seq}", source="proxy", started_at=started,
        ended_at=started + timedelta(milliseconds=250), duration_ms=250.0,
        endpoint="/v1/chat/completions", stream=seq % 2 == 0, status_code=200,
        model="gpt-4o-mini", provider="openai", input_tokens=seq, output_tokens=2 * seq,
        cache_read_tokens=0, cache_write_tokens=0, reasoning_tokens=0,
        total_tokens=3 * seq, cost_usd=Decimal(seq) / Decimal(10**6), project=prefix,
        client="crash-test", tags=["t"], metadata={"seq": seq},
    )


def writer(args) -> int:
    from llmlab.errors import StoreLockedError
    from llmlab.store import Store

    store = Store(args.home, lock_timeout=args.lock_timeout)
    journal = store.journal()
    deadline = time.monotonic() + args.seconds if args.seconds else None
    last_flush = time.monotonic()
    seq = 0
    while (deadline is None or time.monotonic() < deadline) and (not args.count or seq < args.count):
        journal.append(make_record(args.prefix, seq))
        print(f"J {args.prefix}-{seq}", flush=True)
        seq += 1
        due = (args.flush_every and seq % args.flush_every == 0) or (
            args.flush_seconds and time.monotonic() - last_flush >= args.flush_seconds)
        if due:
            last_flush = time.monotonic()
            print("F+", flush=True)
            try:
                result = store.flush()
            except StoreLockedError as exc:
                print(f"L {exc}", flush=True)
            else:
                print(f"F- {result.inserted}", flush=True)
        if args.pause:
            time.sleep(args.pause)
    print(f"DONE {seq}", flush=True)
    return 0


def reader(args) -> int:
    import llmlab

    lab = llmlab.open(args.home, lock_timeout=args.lock_timeout)
    deadline = time.monotonic() + args.seconds
    calls = 0
    last_total = 0
    while time.monotonic() < deadline:
        df = lab.daily(timezone="Europe/Berlin")
        total = int(df["requests"].sum()) if len(df) else 0
        # Records are only ever added: a reader must never see the count go down.
        if total < last_total:
            print(f"SHRANK {last_total} -> {total}", flush=True)
            return 3
        last_total = total
        calls += 1
    print(f"DONE {calls} {last_total}", flush=True)
    return 0


def locked_reader(args) -> int:
    """Open the store while a foreign process holds it; report the error llmlab raises."""
    import llmlab
    from llmlab.errors import StoreLockedError

    start = time.monotonic()
    try:
        llmlab.open(args.home, lock_timeout=args.lock_timeout).daily()
    except StoreLockedError as exc:
        print(f"LOCKED {exc.pid} {exc.waited_s:.3f} {time.monotonic() - start:.3f}", flush=True)
        print(f"MESSAGE {exc}", flush=True)
        return 0
    print("OPENED", flush=True)
    return 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["writer", "reader", "locked_reader"])
    p.add_argument("--home", required=True)
    p.add_argument("--prefix", default=f"w{os.getpid()}")
    p.add_argument("--seconds", type=float, default=0)
    p.add_argument("--count", type=int, default=0)
    p.add_argument("--flush-every", type=int, default=0)
    p.add_argument("--flush-seconds", type=float, default=0)
    p.add_argument("--pause", type=float, default=0)
    p.add_argument("--lock-timeout", type=float, default=None)
    args = p.parse_args(argv)
    return {"writer": writer, "reader": reader, "locked_reader": locked_reader}[args.role](args)


if __name__ == "__main__":
    sys.exit(main())
