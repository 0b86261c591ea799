"""The Claude Code tab: the active 5-hour block with its burn rate and projection, the blocks
(as ``llmlab report blocks``) and the sessions, from ``lab.blocks()`` and ``lab.sessions()``
over the imported Claude Code usage (source ``claude-code``)."""

from __future__ import annotations

import html
from datetime import date
from zoneinfo import ZoneInfo

import ipywidgets as w
import pandas as pd

from . import format as fmt
from .tables import Column, FrameTable

SOURCE = "claude-code"


def _title(text: str) -> w.HTML:
    return w.HTML(f'<div class="llmlab-section-title">{html.escape(text)}</div>')


def _models(v) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return "—"
    return ", ".join(str(m) for m in v) if isinstance(v, (list, tuple)) or hasattr(v, "tolist") else str(v)


class ClaudeCodeTab:
    def __init__(self):
        self.tz = ZoneInfo("UTC")
        when = lambda v: fmt.when(v, self.tz)  # noqa: E731 - follows the dashboard's timezone
        tokens = [Column("input_tokens", "Input", fmt.count), Column("output_tokens", "Output", fmt.count),
                  Column("cache_write_tokens", "Cache write", fmt.count),
                  Column("cache_read_tokens", "Cache read", fmt.count)]
        self.active = w.HTML()
        self.active.add_class("llmlab-active-block")
        self.blocks = FrameTable(
            [Column("start", "Block start", when, "text"), Column("entries", "Messages", fmt.count),
             *tokens, Column("cost_usd", "Cost", fmt.money), Column("models", "Models", _models, "text")],
            key_column="block_id", sort_by="start", empty_text="No blocks in this range.")
        self.sessions = FrameTable(
            [Column("session_id", "Session", lambda v: str(v)[:8], "text"),
             Column("project", "Project", lambda v: v or "—", "text"),
             Column("last_activity", "Last activity", when, "text"), *tokens,
             Column("cost_usd", "Cost", fmt.money), Column("models", "Models", _models, "text")],
            key_column="session_id", sort_by="last_activity", empty_text="No sessions in this range.")
        self.note = w.HTML()
        self.body = w.VBox([
            _title("Active 5-hour block"), self.active,
            _title("5-hour blocks (as in llmlab report blocks)"), self.blocks.widget,
            _title("Sessions"), self.sessions.widget,
        ])
        self.widget = w.VBox([self.note, self.body])

    def refresh(self, lab, *, since: date, until: date, timezone: str, **filters) -> None:
        self.tz = ZoneInfo(timezone)
        filters = {**filters, "source": SOURCE}
        # One pass over the blocks: the table keeps the range, the active block is "now".
        blocks = lab.blocks(timezone=timezone, **filters)
        sessions = lab.sessions(since=since, until=until, timezone=timezone, **filters)
        if blocks.empty and sessions.empty:
            self.note.value = ('<div class="llmlab-unavailable"><b>No Claude Code usage for this '
                               'selection.</b> Import Claude Code\'s session logs with '
                               '<code>llmlab import claude-code</code>; they appear here and '
                               'everywhere else on the dashboard as source <code>claude-code</code>.</div>')
            self.body.layout.display = "none"
            return
        self.note.value = ""
        self.body.layout.display = "flex"
        real = blocks[~blocks["is_gap"].astype(bool)]
        start_day = real["start"].map(lambda t: t.astimezone(self.tz).date())
        self.blocks.show(real[(start_day >= since) & (start_day <= until)])
        self.sessions.show(sessions)
        current = real[real["is_active"].astype(bool)]
        self.active.value = active_block_html(current.iloc[-1] if len(current) else None,
                                              real.iloc[-1] if len(real) else None, self.tz)


def active_block_html(block, last, tz: ZoneInfo) -> str:
    """The active block's spend so far, burn rate and projection to its end."""
    if block is None:
        since = f" The last block started {fmt.when(last['start'], tz)}." if last is not None else ""
        return f'<div class="llmlab-hint">No block is active (no Claude Code message in the last 5 hours).{since}</div>'
    left = block["remaining_minutes"]
    remaining = "—" if left is None or pd.isna(left) else f"{int(left) // 60}h {int(left) % 60:02d}m left"
    start, end = block["start"].astimezone(tz), block["end"].astimezone(tz)
    cells = [
        ("Started", f"{start:%H:%M}", f"{start:%a %b} {start.day} · ends {end:%H:%M} · {remaining}"),
        ("Spent so far", fmt.money(block["cost_usd"]), f"{fmt.count(block['total_tokens'])} tokens · "
                                                        f"{fmt.count(block['entries'])} messages"),
        ("Burn rate", f"{fmt.money(block['cost_per_hour'])}/h",
         f"{fmt.count(block['tokens_per_minute'])} tokens/min"),
        ("Projected at block end", fmt.money(block["projected_cost"]),
         f"{fmt.count(block['projected_tokens'])} tokens"),
    ]
    tiles = "".join(
        f'<div class="llmlab-kpi" data-metric="{html.escape(label)}"><div class="llmlab-kpi-label">'
        f'{html.escape(label)}</div><div class="llmlab-kpi-value">{html.escape(value)}</div>'
        f'<div class="llmlab-kpi-note">{html.escape(note)}</div></div>'
        for label, value, note in cells)
    return f'<div class="llmlab-active-tiles">{tiles}</div>'
