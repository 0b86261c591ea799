"""Sections fed by one Lab helper whose exact columns this module does not pin, and the honest
note such a section shows when the helper it needs is missing."""

from __future__ import annotations

import html
from collections.abc import Callable

import ipywidgets as w
import pandas as pd

from . import format as fmt
from .tables import Column, FrameTable

_MONEY_HINTS = ("cost", "usd", "spent", "limit", "remaining", "projected", "projection", "burn")
_TIME_HINTS = ("time", "_at", "activity", "start", "end", "date", "reset")


def unavailable(feature: str, helper: str) -> str:
    return (f'<div class="llmlab-unavailable"><b>{html.escape(feature)} are not available in this '
            f'version of llmlab yet.</b> This section fills in once <code>{html.escape(helper)}</code> '
            f'exists; nothing here is estimated in the meantime.</div>')


def auto_columns(frame: pd.DataFrame, limit: int = 10) -> list[Column]:
    """Readable columns for a helper result whose exact shape this module does not pin."""
    cols = []
    for name in list(frame.columns)[:limit]:
        lower = name.lower()
        series = frame[name]
        if pd.api.types.is_bool_dtype(series):
            show, kind = (lambda v: "yes" if v else ""), "text"
        elif pd.api.types.is_numeric_dtype(series):
            if any(h in lower for h in _MONEY_HINTS):
                show = fmt.money
            elif "rate" in lower or "share" in lower or "pct" in lower or "percent" in lower:
                show = (lambda v: fmt.percent(v) if v is not None and abs(v) <= 1.5 else fmt.count(v))
            else:
                show = (lambda v: fmt.count(v) if v is not None and float(v).is_integer() else f"{v:,.2f}")
            kind = "num"
        elif pd.api.types.is_datetime64_any_dtype(series) or any(h in lower for h in _TIME_HINTS):
            show, kind = fmt.when, "text"
        else:
            show, kind = (lambda v: "—" if v is None else (", ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v))), "text"
        cols.append(Column(name, name.replace("_", " "), _safe(show), kind))
    return cols


def _safe(show: Callable) -> Callable:
    def run(v):
        try:
            if v is None or (isinstance(v, float) and pd.isna(v)):
                return "—"
            return show(v)
        except (TypeError, ValueError):
            return str(v)
    return run


class HelperSection:
    """A titled table fed by one Lab helper, or an honest note when the helper is missing."""

    def __init__(self, title: str, feature: str, helper: str, key_column: str | None = None):
        self.title, self.feature, self.helper = title, feature, helper
        self.key_column = key_column
        self.note = w.HTML()
        self.table: FrameTable | None = None
        self.widget = w.VBox([w.HTML(f'<div class="llmlab-section-title">{html.escape(title)}</div>'),
                              self.note])

    def show(self, frame: pd.DataFrame | None, error: str | None = None) -> None:
        if frame is None:
            self.note.value = unavailable(self.feature, self.helper) if error is None else (
                f'<div class="llmlab-unavailable">{html.escape(error)}</div>')
            if self.table:
                self.table.widget.layout.display = "none"
            return
        self.note.value = "" if len(frame) else '<div class="llmlab-hint">Nothing yet.</div>'
        cols = auto_columns(frame)
        if self.table is None:
            self.table = FrameTable(cols, key_column=self.key_column or frame.columns[0])
            self.widget.children = list(self.widget.children) + [self.table.widget]
        else:
            self.table.set_columns(cols)
        self.table.widget.layout.display = "flex"
        self.table.show(frame)


def call_helper(lab, name: str, **kw) -> tuple[pd.DataFrame | None, str | None]:
    """``(frame, error)``: ``(None, None)`` when the helper does not exist."""
    fn = getattr(lab, name, None)
    if fn is None:
        return None, None
    try:
        out = fn(**kw)
    except TypeError:
        out = fn()  # an older signature without the dashboard's filters
    except Exception as exc:  # noqa: BLE001 - one section failing must not take the page down
        return None, f"{name}() failed: {exc}"
    if isinstance(out, pd.DataFrame):
        return out, None
    try:
        return pd.DataFrame(out), None
    except Exception as exc:  # noqa: BLE001
        return None, f"{name}() returned {type(out).__name__}, not a table: {exc}"
