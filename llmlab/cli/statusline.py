"""``llmlab statusline``: one line for Claude Code's ``statusLine`` hook.

Claude Code runs the command after each message with a JSON object on stdin (``session_id``,
``transcript_path``, ``model``...) and shows the first line printed. We print this session's
cost, today's cost and the active 5-hour block (cost, time left, burn rate), from the store plus
the lines of the current transcript written since the last import.

Fast on purpose: what the store says is cached in ``<home>/cache/statusline.json`` and reused
until the store file changes (an import or a flush), so most calls only read the transcript's
new lines, with no DuckDB, pandas or LiteLLM import. docs/users/claude-code.md has the
settings.json snippet.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

CACHE_VERSION = 1
BLOCK_MS = 5 * 3_600_000
_HOUR_MS = 3_600_000


def register(sub) -> None:
    _options(sub.add_parser(
        "statusline", help="one status line for Claude Code's statusLine hook (reads hook JSON "
                           "on stdin)",
        description=_DESCRIPTION, epilog=_EPILOG))


def main(argv: list[str]) -> int:
    """``llmlab statusline`` without building the whole command line (kept fast)."""
    import argparse

    p = argparse.ArgumentParser(prog="llmlab statusline", description=_DESCRIPTION, epilog=_EPILOG)
    _options(p)
    return run(p.parse_args(argv))


_DESCRIPTION = ("Print this session's cost, today's cost and the active 5-hour block for Claude "
                "Code's statusLine hook. Reads the hook's JSON on stdin. Uses the store plus the "
                "lines of the current transcript not imported yet.")
_EPILOG = 'settings.json: {"statusLine": {"type": "command", "command": "llmlab statusline"}}'


def _options(p) -> None:
    p.add_argument("--home", metavar="DIR",
                   help="llmlab home folder or .duckdb file (default: $LLMLAB_HOME, "
                        "else <jupyter data dir>/llmlab)")
    p.add_argument("--refresh", type=float, default=300, metavar="SECONDS",
                   help="re-read the store at least this often even if it did not change "
                        "(default 300)")
    p.set_defaults(func=run)


def run(args) -> int:
    raw = sys.stdin.read() if not sys.stdin.isatty() else ""
    try:
        hook = json.loads(raw) if raw.strip() else {}
    except ValueError:
        hook = {}
    try:
        print(status_line(hook if isinstance(hook, dict) else {}, home=args.home,
                          refresh=args.refresh))
    except Exception as exc:  # noqa: BLE001 - a status line must print something, never a trace
        print(f"llmlab: {type(exc).__name__}: {str(exc)[:80]}")
    return 0


def status_line(hook: dict, *, home=None, refresh: float = 300, now: datetime | None = None) -> str:
    from ..paths import resolve_home

    now = now or datetime.now().astimezone()
    home = resolve_home(home)
    transcript = hook.get("transcript_path") or None
    session = hook.get("session_id") or (Path(transcript).stem if transcript else None)
    model = hook.get("model") if isinstance(hook.get("model"), dict) else {}
    cache = _cached(home, session, transcript, now, refresh)
    tail = _tail(home, transcript, session, cache) if transcript else []
    rates = cache.setdefault("rates", {})
    missing = {e.raw_model for e in tail if e.raw_model and e.raw_model not in rates}
    if missing:
        rates.update(_rates(missing))
        _save(home, cache)
    costs = [(e, _cost(e, rates)) for e in tail]
    today_start = int(now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp() * 1000)
    session_cost = cache["session_cost"] + sum(c for _, c in costs)
    today_cost = cache["today_cost"] + sum(c for e, c in costs if e.started_ms >= today_start)
    block = _block(cache.get("block"), sorted(costs, key=lambda ec: ec[0].started_ms))
    parts = [str(model.get("display_name") or model.get("id") or "Claude"),
             f"session ${session_cost:.2f}", f"today ${today_cost:.2f}"]
    now_ms = int(now.timestamp() * 1000)
    if block and now_ms - block["last"] < BLOCK_MS and now_ms < block["start"] + BLOCK_MS:
        left = (block["start"] + BLOCK_MS - now_ms) // 60_000
        text = f"block ${block['cost']:.2f}, {left // 60}h{left % 60:02d}m left"
        if block["last"] > block["first"]:
            per_hour = block["cost"] / ((block["last"] - block["first"]) / 3_600_000)
            text += f", ${per_hour:.2f}/h"
        parts.append(text)
    else:
        parts.append("no active block")
    return " | ".join(parts)


# -- what the store says (cached) ---------------------------------------------------------------
def _stamp(home: Path) -> list:
    out = []
    for name in ("usage.duckdb", "usage.duckdb.wal"):
        try:
            st = os.stat(home / name)
            out.append([st.st_size, st.st_mtime_ns])
        except OSError:
            out.append(None)
    return out


def _cached(home: Path, session, transcript, now: datetime, refresh: float) -> dict:
    path = home / "cache" / "statusline.json"
    key = {"v": CACHE_VERSION, "stamp": _stamp(home), "session": session,
           "transcript": transcript, "day": now.date().isoformat(), "tz": str(now.tzinfo)}
    try:
        cache = json.loads(path.read_text())
        if cache.get("key") == key and time.time() - cache.get("at", 0) < refresh:
            return cache
    except (OSError, ValueError):
        cache = {}
    fresh = _from_store(home, session, transcript, now)
    fresh["rates"] = cache.get("rates", {}) if cache.get("key", {}).get("v") == CACHE_VERSION else {}
    fresh.update(key=key, at=time.time())
    _save(home, fresh)
    return fresh


def _save(home: Path, cache: dict) -> None:
    folder = home / "cache"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"statusline.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(cache))
        os.replace(tmp, folder / "statusline.json")
    except OSError:
        pass  # a read-only home: no cache, just slower


def _from_store(home: Path, session, transcript, now: datetime) -> dict:
    """Session and today's cost, the last block, and where the transcript's import stopped."""
    out = {"session_cost": 0.0, "today_cost": 0.0, "block": None, "offset": 0, "lines": 0,
           "known": []}
    if not (home / "usage.duckdb").exists():
        return out
    from ..errors import StoreError
    from ..reports import block_spans
    from ..store import Store

    store = Store(home, lock_timeout=0.5)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        with store.read() as con:
            out["session_cost"] = float(con.execute(
                "SELECT coalesce(sum(cost_usd), 0) FROM requests "
                "WHERE source = 'claude-code' AND session_id = ?", [session]).fetchone()[0])
            out["today_cost"] = float(con.execute(
                "SELECT coalesce(sum(cost_usd), 0) FROM requests "
                "WHERE source = 'claude-code' AND started_at >= ?", [midnight]).fetchone()[0])
            # The last block: a week of history is enough to find where it starts.
            times = con.execute(
                "SELECT coalesce(list(epoch_ms(started_at) ORDER BY started_at), []) FROM requests "
                "WHERE source = 'claude-code' AND started_at >= ?",
                [now - timedelta(days=7)]).fetchone()[0]
            spans = block_spans(times, BLOCK_MS)
            if spans:
                start, first, last = spans[-1]
                cost = con.execute(
                    "SELECT coalesce(sum(cost_usd), 0) FROM requests WHERE source = 'claude-code' "
                    "AND epoch_ms(started_at) BETWEEN ? AND ?", [first, last]).fetchone()[0]
                out["block"] = {"start": start, "first": first, "last": last, "cost": float(cost)}
            if transcript:
                row = con.execute("SELECT consumed_bytes, consumed_lines FROM _llmlab_log_files "
                                  "WHERE path = ?", [str(transcript)]).fetchone()
                if row:
                    out["offset"], out["lines"] = int(row[0]), int(row[1])
                    # Messages whose first lines were imported and whose last ones are not yet.
                    out["known"] = [r[0] for r in con.execute(
                        "SELECT request_id FROM requests WHERE log_file = ? "
                        "ORDER BY log_line DESC LIMIT 50", [str(transcript)]).fetchall()]
    except StoreError:
        pass  # the store is busy: the transcript's tail still shows
    return out


# -- the transcript's lines written since the last import --------------------------------------
def _tail(home: Path, transcript: str, session, cache: dict) -> list:
    """Usage entries of the transcript's lines past the import's read position.

    What was parsed is kept in the cache (``tail``), so each call reads only the bytes written
    since the previous call, however long the unimported part has grown.
    """
    from dataclasses import astuple

    from ..importers.claude_lines import Entry, keep_best, parse_line

    tail = cache.get("tail") or {}
    if tail.get("from") != cache.get("offset", 0):
        tail = {"from": cache.get("offset", 0), "to": cache.get("offset", 0),
                "lines": cache.get("lines", 0), "entries": []}
    try:
        with open(transcript, "rb") as fh:
            fh.seek(tail["to"])
            data = fh.read()
    except OSError:
        return []
    data = data[: data.rfind(b"\n") + 1]
    known = set(cache.get("known", []))
    entries = [Entry(*e) for e in tail["entries"]]
    lines = data.split(b"\n")[:-1]
    for i, line in enumerate(lines, start=tail["lines"] + 1):
        if b'"usage":{' in line:
            e = parse_line(line, log_file=str(transcript), line_no=i, path_session=session or "")
            if e is not None and e.request_id not in known:
                entries.append(e)
    entries = keep_best(entries)
    if data:
        tail.update(to=tail["to"] + len(data), lines=tail["lines"] + len(lines),
                    entries=[list(astuple(e)) for e in entries])
        cache["tail"] = tail
        _save(home, cache)
    return entries


def _rates(models: set[str]) -> dict:
    """Picodollar rates of models (the slow part of pricing: done once, then cached)."""
    from ..pricing import default_pricebook

    out = {}
    book = default_pricebook()
    for m in models:
        r = book.claude_code_rates(m) if m != "<synthetic>" else None
        if r is None:
            out[m] = None
            continue
        pico = lambda v: None if v is None else int(v * 10**12)  # noqa: E731
        out[m] = {k: pico(getattr(r, k)) for k in (
            "input", "output", "cache_read", "cache_write_5m", "cache_write_1h", "input_above",
            "output_above", "cache_read_above", "cache_write_5m_above", "cache_write_1h_above")}
        out[m]["fast"] = float(r.fast_multiplier)
    return out


def _cost(e, rates: dict) -> float:
    if e.recorded_cost is not None:
        return e.recorded_cost
    r = rates.get(e.raw_model)
    if not r:
        return 0.0

    def tier(tokens, base, above):
        if above is not None and tokens > 200_000:
            return 200_000 * base + (tokens - 200_000) * above
        return tokens * base
    pico = (tier(e.input_tokens, r["input"], r["input_above"])
            + tier(e.output_tokens, r["output"], r["output_above"])
            + tier(e.cache_read_tokens, r["cache_read"], r["cache_read_above"])
            + tier(e.cache_write_5m_tokens, r["cache_write_5m"], r["cache_write_5m_above"])
            + tier(e.cache_write_1h_tokens, r["cache_write_1h"], r["cache_write_1h_above"]))
    return pico / 1e12 * (r["fast"] if e.speed == "fast" else 1)


def _block(block: dict | None, tail: list) -> dict | None:
    """The last block with the tail's messages added (ccusage's 5-hour rule)."""
    b = dict(block) if block else None
    for e, cost in tail:
        t = e.started_ms
        if b is None or t - b["start"] > BLOCK_MS or t - b["last"] > BLOCK_MS:
            b = {"start": t - t % _HOUR_MS, "first": t, "last": t, "cost": 0.0}
        b["last"] = max(b["last"], t)
        b["cost"] += cost
    return b
