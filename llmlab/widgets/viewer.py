"""The request viewer: a paginated table of calls; a selected call opens as a conversation
(roles, messages, tool calls) with a raw JSON view and a copy-as-XML button."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import ipywidgets as w
import pandas as pd

from . import format as fmt
from .browser import CopyButton
from .conversation import as_xml, messages
from .tables import Column, FrameTable

PAGE_SIZE = 20


def _status(v) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else str(int(v))


class RequestViewer:
    """``load(offset, limit, conversations_only)`` returns ``(calls, total)`` for the current
    selection (``Lab.requests_page``); ``fetch(request_id, started_at=...)`` one call with
    bodies (``Lab.request``)."""

    def __init__(self, load: Callable[..., tuple[pd.DataFrame, int]],
                 fetch: Callable[..., dict | None]):
        self._load, self._fetch = load, fetch
        self._started: dict[str, object] = {}   # request_id -> started_at of the page shown
        self.tz = ZoneInfo("UTC")
        self.page = 0
        self.total = 0
        self.current: dict | None = None
        self.table = FrameTable(self._columns(), key_column="request_id", sortable=False,
                                on_select=self.open, empty_text="No calls in this selection.")
        self.only_conversations = w.ToggleButton(description="Only calls with a stored conversation",
                                                 layout=w.Layout(width="auto"))
        self.only_conversations.add_class("llmlab-only-conversations")
        self.prev = w.Button(description="‹ Newer", layout=w.Layout(width="auto"))
        self.next = w.Button(description="Older ›", layout=w.Layout(width="auto"))
        self.prev.add_class("llmlab-page-prev")
        self.next.add_class("llmlab-page-next")
        self.position = w.HTML()
        self.position.add_class("llmlab-page-position")
        self.prev.on_click(lambda _b: self.go(self.page - 1))
        self.next.on_click(lambda _b: self.go(self.page + 1))
        self.only_conversations.observe(lambda _c: self.go(0), "value")

        self.facts = w.HTML()
        self.mode = w.ToggleButtons(options=[("Conversation", "conversation"), ("Raw JSON", "json")],
                                    value="conversation", style={"button_width": "auto"})
        self.mode.add_class("llmlab-view-mode")
        self.copy = CopyButton(label="Copy as XML")
        self.body = w.HTML()
        self.body.add_class("llmlab-conversation")
        self.mode.observe(lambda _c: self._draw_detail(), "value")
        tools = w.HBox([self.mode, self.copy], layout=w.Layout(justify_content="space-between",
                                                               align_items="center"))
        self.detail = w.VBox([self.facts, tools, self.body], layout=w.Layout(display="none"))
        self.detail.add_class("llmlab-detail")
        self.placeholder = w.HTML('<div class="llmlab-hint">Select a call to see its conversation.</div>')
        pager = w.HBox([self.only_conversations, w.HBox([self.prev, self.position, self.next],
                                                        layout=w.Layout(align_items="center"))],
                       layout=w.Layout(justify_content="space-between", align_items="center"))
        self.widget = w.VBox([pager, self.table.widget, self.placeholder, self.detail])

    def _columns(self) -> list[Column]:
        return [
            Column("started_at", "Time", lambda v: fmt.when(v, self.tz), "text"),
            Column("project", "Project", lambda v: v or "—", "text"),
            Column("model", "Model", lambda v: v or "—", "text"),
            Column("status_code", "Status", _status),
            Column("input_tokens", "Input", fmt.count),
            Column("output_tokens", "Output", fmt.count),
            Column("cost_usd", "Cost", fmt.money_fine),
            Column("duration_ms", "Latency", fmt.duration),
            Column("has_conversation", "Conversation", lambda v: "stored" if v else ""),
        ]

    # -- the list -------------------------------------------------------------------------
    def reload(self, tz: ZoneInfo | None = None) -> None:
        """Back to the first page of the (new) selection."""
        if tz is not None:
            self.tz = tz
        self.go(0)

    def go(self, page: int) -> None:
        self.page = max(0, page)
        calls, self.total = self._page()
        pages = max(1, math.ceil(self.total / PAGE_SIZE))
        if self.page >= pages:  # past the end (the selection shrank): show the last page
            self.page = pages - 1
            calls, self.total = self._page()
        self.table.widget.selected = ""
        self.table.show(calls)
        self._started = dict(zip(calls["request_id"], calls["started_at"]))
        first = self.page * PAGE_SIZE + 1 if self.total else 0
        last = min(self.total, (self.page + 1) * PAGE_SIZE)
        self.position.value = (f'<span class="llmlab-muted">{first:,}–{last:,} of '
                               f'{self.total:,} calls · page {self.page + 1:,} of {pages:,}</span>')
        self.prev.disabled = self.page == 0
        self.next.disabled = self.page >= pages - 1
        self.close()

    def _page(self) -> tuple[pd.DataFrame, int]:
        return self._load(offset=self.page * PAGE_SIZE, limit=PAGE_SIZE,
                          conversations_only=self.only_conversations.value)

    # -- one call -------------------------------------------------------------------------
    def open(self, request_id: str) -> None:
        # The row's start time lets the store find the call without reading every id.
        started = self._started.get(request_id)
        self.current = self._fetch(request_id, started_at=started) if started is not None else None
        if self.current is None:
            self.current = self._fetch(request_id)
        if self.current is None:
            self.close()
            return
        self.placeholder.layout.display = "none"
        self.detail.layout.display = "flex"
        self._draw_detail()

    def close(self) -> None:
        self.current = None
        self.detail.layout.display = "none"
        self.placeholder.layout.display = "block"

    def _draw_detail(self) -> None:
        call = self.current
        if call is None:
            return
        msgs = messages(call.get("request_body"), call.get("response_body"))
        self.facts.value = facts_html(call, self.tz)
        self.copy.text = as_xml(msgs) if msgs else ""
        if self.mode.value == "json":
            self.body.value = f'<pre class="llmlab-json">{html.escape(_json(call))}</pre>'
        elif msgs:
            self.body.value = conversation_html(msgs)
        else:
            self.body.value = ('<div class="llmlab-hint">No conversation is stored for this call: '
                               'the proxy keeps request and response bodies only when body storage '
                               'is turned on in its settings.</div>')


def _json(call: dict) -> str:
    def default(v):
        if isinstance(v, datetime):
            return v.isoformat()
        return str(v)
    return json.dumps(call, indent=2, ensure_ascii=False, default=default)


def facts_html(call: dict, tz: ZoneInfo) -> str:
    status = _status(call.get("status_code"))
    if call.get("error_type"):
        status += f" · {call['error_type']}: {call.get('error_message') or ''}"
    model = call.get("model") or "—"
    if call.get("model_requested") and call.get("model_requested") != call.get("model"):
        model = f"{call['model_requested']} → {model}"
    tokens = (f"input {fmt.count(call.get('input_tokens'))} · cache read "
              f"{fmt.count(call.get('cache_read_tokens'))} · cache write "
              f"{fmt.count(call.get('cache_write_tokens'))} · output {fmt.count(call.get('output_tokens'))}"
              f" (reasoning {fmt.count(call.get('reasoning_tokens'))})")
    cost = fmt.money_fine(call.get("cost_usd")) if call.get("cost_usd") is not None else "unpriced"
    timing = fmt.duration(call.get("duration_ms"))
    if call.get("ttft_ms") is not None:
        timing += f" · first token after {fmt.duration(call.get('ttft_ms'))}"
    rows = [
        ("Call", call.get("request_id")), ("Started", fmt.when(call.get("started_at"), tz)),
        ("Source", f"{call.get('source') or '—'} · {call.get('endpoint') or ''}"
                   f"{' · streamed' if call.get('stream') else ''}"),
        ("Status", status), ("Model", f"{model} ({call.get('provider') or '?'})"),
        ("Attribution", " · ".join(f"{k} {call[k]}" for k in ("project", "client", "user_id", "session_id")
                                   if call.get(k)) or "—"),
        ("Tokens", tokens), ("Cost", f"{cost} ({call.get('pricing_source') or 'no price source'})"),
        ("Timing", timing),
    ]
    cells = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in rows)
    return f'<dl class="llmlab-facts">{cells}</dl>'


def conversation_html(msgs) -> str:
    parts = []
    for m in msgs:
        who = m.role + (f" · {m.name}" if m.name else "")
        body = f'<div class="llmlab-msg-text">{html.escape(m.text)}</div>' if m.text else ""
        for c in m.tool_calls:
            body += (f'<div class="llmlab-tool-call"><div class="llmlab-tool-name">tool call · '
                     f'{html.escape(c.name)}</div><pre>{html.escape(c.arguments)}</pre></div>')
        parts.append(f'<div class="llmlab-msg role-{html.escape(m.role)}">'
                     f'<div class="llmlab-msg-role">{html.escape(who)}</div>{body}</div>')
    return "".join(parts)
