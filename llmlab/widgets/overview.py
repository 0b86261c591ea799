"""The overview tab: KPI tiles against the previous period, and the charts."""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass

import ipywidgets as w
import pandas as pd

from .. import charts
from . import format as fmt


@dataclass(frozen=True)
class Tile:
    key: str
    label: str
    value: Callable[[pd.Series], float]
    show: Callable[[float], str]
    exact: Callable[[float], str]
    better: int = 0           # +1: up is good, -1: up is bad, 0: neither
    note: Callable[[pd.Series], str] | None = None


def _col(name: str) -> Callable[[pd.Series], float]:
    return lambda r: r[name]


def _per_call(r: pd.Series) -> float:
    return r["cost_usd"] / r["requests"] if r["requests"] else float("nan")


TILES = [
    Tile("spend", "Spend", _col("cost_usd"), fmt.money, lambda v: f"${v:,.6f}"),
    Tile("requests", "Requests", _col("requests"), fmt.count, fmt.count),
    Tile("input_tokens", "Input tokens", _col("input_tokens"), fmt.compact, fmt.count,
         note=lambda r: "uncached input"),
    Tile("output_tokens", "Output tokens", _col("output_tokens"), fmt.compact, fmt.count,
         note=lambda r: f"{fmt.compact(r['reasoning_tokens'])} reasoning"),
    Tile("cache_tokens", "Cache tokens", lambda r: r["cache_read_tokens"] + r["cache_write_tokens"],
         fmt.compact, fmt.count,
         note=lambda r: f"read {fmt.compact(r['cache_read_tokens'])} · write {fmt.compact(r['cache_write_tokens'])}"),
    Tile("cost_per_call", "Cost per call", _per_call, fmt.money, lambda v: f"${v:,.6f}"),
    Tile("mean_latency", "Mean latency", _col("mean_duration_ms"), fmt.duration, fmt.duration, -1),
    Tile("p95_latency", "p95 latency", _col("p95_duration_ms"), fmt.duration, fmt.duration, -1),
    Tile("mean_ttft", "Mean time to first token", _col("mean_ttft_ms"), fmt.duration, fmt.duration, -1,
         note=lambda r: "streamed calls"),
    Tile("p95_ttft", "p95 time to first token", _col("p95_ttft_ms"), fmt.duration, fmt.duration, -1,
         note=lambda r: "streamed calls"),
    Tile("error_rate", "Error rate", _col("error_rate"), fmt.percent, lambda v: fmt.percent(v, 3), -1,
         note=lambda r: f"{fmt.count(r['errors'])} failed calls"),
    Tile("unpriced", "Unpriced calls", _col("unpriced"), fmt.count, fmt.count, -1,
         note=lambda r: "no known price: not in spend"),
]


def tile_html(tile: Tile, current: pd.Series, previous: pd.Series, period: str) -> str:
    """One KPI tile: label, value, and the change against the previous period."""
    now, before = tile.value(current), tile.value(previous)
    text, sign = fmt.change(now, before)
    mood = "neutral" if sign == 0 or tile.better == 0 else ("good" if sign == tile.better else "bad")
    note = tile.note(current) if tile.note else ""
    title = f"{tile.label}: {tile.exact(now) if not fmt._missing(now) else '—'}"
    prev = tile.show(before)
    return (
        f'<div class="llmlab-kpi" data-metric="{tile.key}" title="{html.escape(title)}">'
        f'<div class="llmlab-kpi-label">{html.escape(tile.label)}</div>'
        f'<div class="llmlab-kpi-value">{html.escape(tile.show(now))}</div>'
        f'<div class="llmlab-kpi-delta {mood}" title="previous {html.escape(period)}: {html.escape(prev)}">'
        f'{html.escape(text)} <span>vs previous {html.escape(period)}</span></div>'
        f'<div class="llmlab-kpi-note">{html.escape(note)}</div></div>'
    )


class KpiTiles:
    """The grid of KPI tiles (an ipywidgets GridspecLayout, two rows of six)."""

    def __init__(self):
        self.tiles = {t.key: w.HTML() for t in TILES}
        self.grid = w.GridspecLayout(2, 6, layout=w.Layout(grid_gap="12px", width="100%"))
        for i, t in enumerate(TILES):
            self.tiles[t.key].add_class("llmlab-kpi-cell")
            self.grid[i // 6, i % 6] = self.tiles[t.key]
        self.grid.add_class("llmlab-kpis")

    def update(self, compare: pd.DataFrame, period: str) -> None:
        current, previous = compare.loc["current"], compare.loc["previous"]
        for t in TILES:
            self.tiles[t.key].value = tile_html(t, current, previous, period)


class LiveChart:
    """An offline JupyterChart redrawn from a builder's cached spec; clicks on its selections
    are reported as ``{field: value}`` to ``on_pick``."""

    def __init__(self, builder, df, *, selections=(), on_pick=None, **opts):
        self.builder = builder
        # Start from the cached structure so the first draw costs what every later one does.
        self.widget = charts.jupyter_chart(builder.empty(df, **opts))
        self.update(df, **opts)
        self.widget.add_class("llmlab-chart")
        self._on_pick = on_pick
        for name in selections:
            self.widget.selections.observe(self._picked, name)

    def update(self, df, **opts) -> None:
        self.widget.spec = self.builder.spec(df, **opts)

    def _picked(self, change) -> None:
        value = getattr(change["new"], "value", None)
        if value and self._on_pick:  # an empty selection is a redraw or a click beside the marks
            self._on_pick(change["name"], dict(value[0]))


def card(title: str, body: w.Widget, *, tools: w.Widget | None = None, cls: str = "") -> w.VBox:
    """A white panel with a title row (and optional tools on the right of it)."""
    head = w.HBox([w.HTML(f'<div class="llmlab-card-title">{html.escape(title)}</div>')]
                  + ([tools] if tools else []), layout=w.Layout(justify_content="space-between",
                                                                align_items="center"))
    box = w.VBox([head, body])
    box.add_class("llmlab-card")
    if cls:
        box.add_class(cls)
    return box
