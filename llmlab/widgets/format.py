"""How numbers read on the dashboard: dollars with cents, thousands separators, short units."""

from __future__ import annotations

import math
from datetime import datetime


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def money(x, *, cents: bool = True) -> str:
    """$1,234.56; amounts under a cent keep their first significant digits ($0.0042)."""
    if _missing(x):
        return "—"
    x = float(x)
    if 0 < abs(x) < 0.01:
        return f"${x:.2g}" if abs(x) >= 0.0001 else "<$0.0001"
    return f"${x:,.2f}" if cents else f"${x:,.0f}"


def money_fine(x) -> str:
    """A single call's cost: four decimals under a dollar ($0.0612), cents above."""
    if _missing(x):
        return "—"
    x = float(x)
    if x == 0 or abs(x) >= 1:
        return money(x)
    return f"${x:.4f}" if abs(x) >= 0.0001 else "<$0.0001"


def count(x) -> str:
    return "—" if _missing(x) else f"{int(x):,}"


def compact(x) -> str:
    """12.3M, 845.2K, 912: for tiles where the exact number sits in the tooltip."""
    if _missing(x):
        return "—"
    x = float(x)
    for size, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= size:
            return f"{x / size:,.1f}{unit}"
    return f"{x:,.0f}"


def duration(ms) -> str:
    """845 ms, 1.24 s, 2m 05s."""
    if _missing(ms):
        return "—"
    ms = float(ms)
    if ms < 1000:
        return f"{ms:,.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:,.2f} s"
    minutes, seconds = divmod(ms / 1000, 60)
    return f"{int(minutes)}m {seconds:02.0f}s"


def percent(x, digits: int = 1) -> str:
    return "—" if _missing(x) else f"{float(x) * 100:.{digits}f}%"


def when(ts, tz=None) -> str:
    """A call's start time in the dashboard's timezone: 2026-11-23 14:05:09."""
    if _missing(ts) or ts is None:
        return "—"
    if isinstance(ts, datetime) and tz is not None and ts.tzinfo is not None:
        ts = ts.astimezone(tz)
    return f"{ts:%Y-%m-%d %H:%M:%S}"


def change(current, previous) -> tuple[str, int]:
    """The change against the previous period as text, and its sign (-1, 0, 1)."""
    if _missing(current) or _missing(previous):
        return "no data to compare", 0
    current, previous = float(current), float(previous)
    if previous == 0:
        return ("no change", 0) if current == 0 else ("new", 1)
    rel = (current - previous) / abs(previous)
    if abs(rel) < 0.0005:
        return "no change", 0
    arrow = "▲" if rel > 0 else "▼"
    return f"{arrow} {abs(rel) * 100:,.1f}%", (1 if rel > 0 else -1)
