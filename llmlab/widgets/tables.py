"""Tables: a DataFrame shown through :class:`DataTable`, sorted in Python; the breakdown tab."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import ipywidgets as w
import pandas as pd

from . import format as fmt
from .browser import DataTable


@dataclass(frozen=True)
class Column:
    key: str                               # the DataFrame column (also the sort key)
    label: str
    show: Callable[[object], str] = str
    kind: str = "num"                      # "text" columns align left and sort A-Z first


class FrameTable:
    """A :class:`DataTable` over a DataFrame: header clicks re-sort the frame, row clicks call
    ``on_select(key)`` with the row's ``key_column`` value."""

    def __init__(self, columns: list[Column], *, key_column: str, sort_by: str | None = None,
                 sortable: bool = True, on_select: Callable[[str], None] | None = None,
                 empty_text: str = "Nothing in this selection."):
        self.columns = columns
        self.key_column = key_column
        self.frame = pd.DataFrame()
        self.on_select = on_select
        self.widget = DataTable(
            columns=[{"key": c.key, "label": c.label, "kind": c.kind} for c in columns],
            sort_by=sort_by or "", sortable=sortable, clickable=on_select is not None,
            empty_text=empty_text)
        self.widget.observe(lambda _c: self._draw(), ["sort_by", "descending"])
        self.widget.observe(self._selected, "selected")

    def set_columns(self, columns: list[Column], sort_by: str | None = None) -> None:
        self.columns = columns
        with self.widget.hold_sync():
            self.widget.columns = [{"key": c.key, "label": c.label, "kind": c.kind} for c in columns]
            if sort_by is not None:
                self.widget.sort_by = sort_by

    def show(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self._draw()

    def sorted_frame(self) -> pd.DataFrame:
        key = self.widget.sort_by
        if not key or key not in self.frame.columns:
            return self.frame
        return self.frame.sort_values(key, ascending=not self.widget.descending,
                                      na_position="last", kind="stable")

    def _draw(self) -> None:
        rows = []
        for rec in self.sorted_frame().to_dict("records"):
            row = {c.key: c.show(rec.get(c.key)) for c in self.columns}
            row["_key"] = "" if rec.get(self.key_column) is None else str(rec.get(self.key_column))
            rows.append(row)
        self.widget.rows = rows

    def _selected(self, change) -> None:
        if change["new"] and self.on_select:
            self.on_select(change["new"])


def _name(v) -> str:
    return "(none)" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)


def breakdown_columns(group: str) -> list[Column]:
    first = [Column(group, group.capitalize(), _name, "text")]
    if group == "model":
        first.append(Column("provider", "Provider", _name, "text"))
    return first + [
        Column("requests", "Requests", fmt.count),
        Column("input_tokens", "Input", fmt.count),
        Column("output_tokens", "Output", fmt.count),
        Column("cache_read_tokens", "Cache read", fmt.count),
        Column("cache_write_tokens", "Cache write", fmt.count),
        Column("cost_usd", "Cost", fmt.money),
        Column("share", "Share", fmt.percent),
        Column("mean_duration_ms", "Mean latency", fmt.duration),
        Column("errors", "Errors", fmt.count),
        Column("unpriced", "Unpriced", fmt.count),
    ]


class Breakdown:
    """Usage per model, provider, project or client (a toggle), sortable by any column.
    Clicking a row filters the dashboard by it."""

    def __init__(self, group: str, on_pick: Callable[[str, str], None]):
        self.group = w.ToggleButtons(
            options=[("Model", "model"), ("Provider", "provider"), ("Project", "project"),
                     ("Client", "client")], value=group, style={"button_width": "auto"})
        self.group.add_class("llmlab-group")
        self.table = FrameTable(breakdown_columns(group), key_column=group, sort_by="cost_usd",
                                on_select=lambda key: on_pick(self.group.value, key))
        self.hint = w.HTML('<div class="llmlab-hint">Click a column to sort, a row to filter '
                           'the dashboard by it.</div>')

    def show(self, frame: pd.DataFrame, group: str) -> None:
        if self.table.key_column != group:
            self.table.key_column = group
            self.table.set_columns(breakdown_columns(group))
        self.table.widget.selected = ""
        self.table.show(frame)
