"""The same line rules as claude_sql.py, in plain Python, for a handful of lines.

The status line reads the few lines Claude Code wrote since the last import (the "tail" of the
current transcript) without DuckDB; a bulk import never comes here. ``parse_line`` returns the
usage entry of one line, or ``None`` for a line ccusage would drop or not count.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime

_TS = re.compile(r"\d{4}-\d{2}-\d{2}T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{3})?(Z|[+-]\d{2}:\d{2})")
_SEMVER = re.compile(r"\d+\.\d+\.\d")
_NOT_NULL_TOP = ("sessionId", "version", "requestId", "isApiErrorMessage", "costUSD", "cwd")
_NOT_NULL_USAGE = ("speed", "cache_read_input_tokens", "cache_creation_input_tokens")


@dataclass
class Entry:
    request_id: str
    started_ms: int
    model: str | None          # as billed: "-fast" appended for fast mode
    raw_model: str | None
    speed: str | None
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_5m_tokens: int
    cache_write_1h_tokens: int
    recorded_cost: float | None
    is_sidechain: bool

    @property
    def total_tokens(self) -> int:
        return (self.input_tokens + self.output_tokens + self.cache_read_tokens
                + self.cache_write_5m_tokens + self.cache_write_1h_tokens)


def _count(v, required: bool) -> int | None:
    if v is None:
        return None if required else 0
    if isinstance(v, bool) or not isinstance(v, int) or v < 0 or v >= 10**10:
        return None
    return v


def parse_line(line: str | bytes, *, log_file: str, line_no: int, path_session: str) -> Entry | None:
    """The usage entry of one log line (advisor iterations are left to the bulk import)."""
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    if '"usage":{' not in text:
        return None
    try:
        d = json.loads(text)
    except ValueError:
        return None
    msg = d.get("message") if isinstance(d, dict) else None
    usage = msg.get("usage") if isinstance(msg, dict) else None
    if not isinstance(usage, dict):
        return None
    if any(k in d and d[k] is None for k in _NOT_NULL_TOP) or \
            any(k in msg and msg[k] is None for k in ("id", "model")) or \
            any(k in usage and usage[k] is None for k in _NOT_NULL_USAGE):
        return None
    inp, out = _count(usage.get("input_tokens"), True), _count(usage.get("output_tokens"), True)
    cr, cw = _count(usage.get("cache_read_input_tokens"), False), \
        _count(usage.get("cache_creation_input_tokens"), False)
    cc = usage.get("cache_creation")
    if isinstance(cc, dict):
        cw5 = _count(cc.get("ephemeral_5m_input_tokens"), False)
        cw1 = _count(cc.get("ephemeral_1h_input_tokens"), False)
    else:
        cw5, cw1 = cw, 0
    if None in (inp, out, cr, cw, cw5, cw1):
        return None
    ts = d.get("timestamp")
    if not isinstance(ts, str) or not _TS.fullmatch(ts):
        return None
    try:
        started = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None
    version, sid, req = d.get("version"), d.get("sessionId"), d.get("requestId")
    mid, model, speed = msg.get("id"), msg.get("model"), usage.get("speed")
    if version is not None and not (isinstance(version, str) and _SEMVER.match(version)):
        return None
    if "" in (sid, req, mid, model) or speed not in (None, "standard", "fast"):
        return None
    cost = d.get("costUSD")
    if cost is not None and (isinstance(cost, bool) or not isinstance(cost, (int, float))):
        return None
    return Entry(
        request_id=request_id(mid, req, sid or path_session, log_file, line_no),
        started_ms=int(started.timestamp() * 1000),
        model=(model + "-fast") if speed == "fast" and model and model != "<synthetic>" else model,
        raw_model=model, speed=speed, input_tokens=inp, output_tokens=out, cache_read_tokens=cr,
        cache_write_5m_tokens=cw5, cache_write_1h_tokens=cw1,
        recorded_cost=float(cost) if cost is not None else None,
        is_sidechain=d.get("isSidechain") is True)


def request_id(message_id, provider_request_id, session, log_file: str, line_no: int) -> str:
    """The row key of a message (claude_sql.REQUEST_ID_SQL, in Python)."""
    if message_id is None:
        return f"claude-code:line:{hashlib.md5(log_file.encode()).hexdigest()}:{line_no}"
    if provider_request_id is not None:
        return f"claude-code:{message_id}:req:{provider_request_id}"
    return f"claude-code:{message_id}:session:{session}"


def keep_best(entries: list[Entry]) -> list[Entry]:
    """One entry per key, the one ccusage keeps (main chain, then most tokens, then first)."""
    best: dict[str, Entry] = {}
    for e in entries:
        cur = best.get(e.request_id)
        if cur is None or (cur.is_sidechain, -cur.total_tokens, cur.speed is None) > \
                (e.is_sidechain, -e.total_tokens, e.speed is None):
            best[e.request_id] = e
    return list(best.values())
