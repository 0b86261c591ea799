"""The dashboard: controls, KPI tiles, charts, tables, request viewer, budgets and Claude Code,
composed into one ipywidgets AppLayout. ``notebooks/dashboard.ipynb`` shows it under Voila.

Every redraw reads the store through one short read lease (:meth:`Lab.snapshot`) and only for
the tab on screen; other tabs catch up when they are opened.
"""

from __future__ import annotations

import asyncio
import html
import os
import tempfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import ipywidgets as w
import pandas as pd

from .. import charts
from ..export import export
from .controls import Controls
from .claude import ClaudeCodeTab
from .budgets import BudgetsTab
from .overview import KpiTiles, LiveChart, card
from .server import empty_state_html
from .state import FILTERS, TABS, ViewState
from .style import stylesheet
from .browser import DownloadButton, UrlSync
from .tables import Breakdown
from .viewer import RequestViewer

TAB_TITLES = {"overview": "Overview", "breakdown": "Breakdown", "requests": "Requests",
              "budgets": "Budgets", "claude-code": "Claude Code"}
URL_KEYS = ["tab", "range", "from", "to", *FILTERS, "tz", "stack", "group"]
_BY_PERIOD = {"hour": "hourly", "day": "daily", "week": "weekly"}


class PageLayout(w.AppLayout):
    """AppLayout whose rows may also be ``auto`` (sized to their content): the page scrolls as
    a whole instead of squeezing the header into a fraction of the window."""

    @staticmethod
    def _size_to_css(size):
        return size if size == "auto" else w.AppLayout._size_to_css(size)


class Dashboard:
    """``Dashboard(lab)`` builds the page; display ``dashboard.app`` (or the object itself).

    ``query`` is the page URL's query string (default: ``$QUERY_STRING``, which Voila sets), so
    a shared or reloaded link opens on the same view.
    """

    def __init__(self, lab=None, *, query: str | None = None, url_sync: bool | None = None):
        if lab is None:
            from ..query import open as open_lab
            lab = open_lab()
        self.lab = lab
        self.state = ViewState.from_query(os.environ.get("QUERY_STRING", "") if query is None else query)
        self._dirty = set(TABS)
        self._calendar_key = None
        self._calendar_rows = None
        self._auto_task: asyncio.Task | None = None
        self.last_refresh: datetime | None = None
        self.has_data = False

        self.url = UrlSync(enabled=bool(os.environ.get("VOILA_REQUEST_URL")) if url_sync is None else url_sync,
                           params=URL_KEYS, query=self.state.query())
        self.url.observe(self._url_changed, "query")
        self.controls = Controls(self.state)
        self.controls.on_change(self.apply)
        self.controls.refresh.on_click(lambda _b: self.refresh())
        self.controls.auto.observe(lambda c: self.auto_refresh(c["new"]), "value")
        self.csv = DownloadButton(lambda: self.export_bytes("csv"), label="⤓ CSV")
        self.parquet = DownloadButton(lambda: self.export_bytes("parquet"), label="⤓ Parquet")
        self.status = w.HTML()
        self.status.add_class("llmlab-status-line")
        self.banner = w.HTML(layout=w.Layout(display="none"))
        self.problem = w.HTML(layout=w.Layout(display="none"))

        self.kpis = KpiTiles()
        self.stack = w.ToggleButtons(options=[("Model", "model"), ("Provider", "provider")],
                                     value=self.state.stack, style={"button_width": "auto"})
        self.stack.add_class("llmlab-stack")
        self.stack.observe(lambda c: self.apply(self.state.replace(stack=c["new"])), "value")
        self._chart_slots = {name: w.Box() for name in ("cost", "tokens", "calendar", "share")}
        self.cost_chart = self.tokens_chart = self.calendar_chart = self.share_chart = None
        self.calendar_caption = w.HTML()
        self.overview = self._overview_layout()

        self.breakdown = Breakdown(self.state.group, self._pick)
        self.breakdown.group.observe(lambda c: self.apply(self.state.replace(group=c["new"])), "value")
        self.viewer = RequestViewer(self._load_calls, self.lab.request)
        self.budgets = BudgetsTab()
        self.claude = ClaudeCodeTab()
        self.tabs = w.Tab(children=[
            self.overview,
            card("Usage by", w.VBox([self.breakdown.group, self.breakdown.table.widget, self.breakdown.hint]),
                 cls="llmlab-section-breakdown"),
            card("Requests", self.viewer.widget, cls="llmlab-section-requests"),
            w.VBox([self.budgets.widget], layout=w.Layout(padding="0 2px")),
            w.VBox([self.claude.widget], layout=w.Layout(padding="0 2px")),
        ])
        self.tabs.children[3].add_class("llmlab-section-budgets")
        self.tabs.children[4].add_class("llmlab-section-claude-code")
        for i, key in enumerate(TABS):
            self.tabs.set_title(i, TAB_TITLES[key])
        self.tabs.selected_index = TABS.index(self.state.tab)
        self.tabs.observe(self._tab_changed, "selected_index")
        self.empty = w.HTML()
        self.empty.add_class("llmlab-empty-state")
        self.app = PageLayout(header=self._header(), center=self.tabs,
                              pane_heights=["auto", "auto", "0px"], layout=w.Layout(grid_gap="14px"))
        self.app.add_class("llmlab-dash")
        self.root = w.VBox([stylesheet(), self.url, self.app])
        self.refresh()

    def _ipython_display_(self):
        from IPython.display import display
        display(self.root)

    # -- layout ---------------------------------------------------------------------------
    def _header(self) -> w.VBox:
        title = w.HTML('<div class="llmlab-title">llmlab<span>LLM usage and cost</span></div>')
        tools = w.HBox([self.status, self.controls.refresh, self.controls.auto, self.csv, self.parquet])
        tools.add_class("llmlab-toolbar")
        top = w.HBox([title, tools], layout=w.Layout(justify_content="space-between", align_items="center"))
        ranges = w.HBox([self.controls.range, self.controls.custom])
        ranges.add_class("llmlab-toolbar")
        filters = w.HBox(list(self.controls.filters.values()) + [self.controls.timezone, self.controls.clear])
        filters.add_class("llmlab-filters")
        self._selection_rows = (ranges, filters)
        return w.VBox([top, ranges, filters, self.problem, self.banner], layout=w.Layout(grid_gap="8px"))

    def _overview_layout(self) -> w.VBox:
        self.cost_sub = w.HTML()
        grid = w.GridspecLayout(3, 12, layout=w.Layout(grid_gap="14px", width="100%"))
        grid[0, :] = card("Cost over time", self._chart_slots["cost"], tools=self.stack,
                          cls="llmlab-section-cost")
        grid[1, :5] = card("Tokens over time", self._chart_slots["tokens"], cls="llmlab-section-tokens")
        grid[1, 5:] = card("Cost share", self._chart_slots["share"], cls="llmlab-section-share")
        grid[2, :] = card("Daily spend, last 12 months",
                          w.VBox([self._chart_slots["calendar"], self.calendar_caption]),
                          cls="llmlab-section-calendar")
        grid.layout.grid_template_rows = "auto auto auto"  # each row as tall as its cards
        box = w.VBox([self.kpis.grid, grid], layout=w.Layout(grid_gap="14px"))
        box.add_class("llmlab-section-overview")
        return box

    # -- state ----------------------------------------------------------------------------
    def apply(self, state: ViewState, *, from_url: bool = False) -> None:
        """Show ``state``: sync the controls, the tab and the URL, and redraw what changed."""
        old, self.state = self.state, state
        if state == old:
            return
        if not from_url:
            self.url.show(state.query())
        self.controls.show(state)
        if self.stack.value != state.stack:
            self.stack.value = state.stack
        if self.breakdown.group.value != state.group:
            self.breakdown.group.value = state.group
        if self.tabs.selected_index != TABS.index(state.tab):
            self.tabs.selected_index = TABS.index(state.tab)
        if _selection(old) != _selection(state):
            self._dirty |= {"overview", "breakdown", "requests", "claude-code"}
        if old.stack != state.stack:
            self._dirty.add("overview")
        if old.group != state.group:
            self._dirty.add("breakdown")
        self._draw_visible()

    def _url_changed(self, change) -> None:
        state = ViewState.from_query(change["new"])
        if state.query() != change["new"]:
            self.url.show(state.query(), replace=True)  # tidy a hand-edited URL in place
        self.apply(state, from_url=True)

    def _tab_changed(self, change) -> None:
        self.apply(self.state.replace(tab=TABS[change["new"]]))

    def _pick(self, field: str, value) -> None:
        """A click in a chart or table: filter the page by it."""
        if value in (None, charts.OTHER, "(none)") or (isinstance(value, str) and value.endswith(" more")):
            return
        if field == "day":
            day = _as_date(value)
            self.apply(self.state.replace(range="custom", start=day, end=day))
        elif field in FILTERS:
            self.apply(self.state.replace(**{field: str(value)}))

    def query_args(self, state: ViewState | None = None) -> dict:
        s = state or self.state
        first, last = s.window()
        return {"since": first, "until": last, "timezone": s.timezone, **s.filters()}

    # -- drawing --------------------------------------------------------------------------
    def refresh(self, *, auto: bool = False) -> None:
        """Re-read everything: filter choices, budgets, and the tab on screen."""
        try:
            self._refresh(auto)
        except Exception as exc:  # noqa: BLE001 - shown on the page, which stays usable
            self._dirty = set(TABS)
            self._show_problem(exc)

    def _refresh(self, auto: bool) -> None:
        with self.lab.snapshot() as lab:
            values = {name: lab.distinct(name) for name in FILTERS}
            self.has_data = bool(values["source"])
            self.controls.set_options(values)
            alerts = self.budgets.refresh(lab)
        self._show_banner(alerts)
        self._calendar_key = None
        keep_open = auto and self.viewer.current is not None
        self._dirty = set(TABS) - ({"requests"} if keep_open else set())
        self.app.center = self.tabs if self.has_data else self.empty
        for row in self._selection_rows:  # nothing to select yet: no date or filter rows
            row.layout.display = "flex" if self.has_data else "none"
        if not self.has_data:
            self.empty.value = empty_state_html()
        self._draw_visible()

    def _draw_visible(self) -> None:
        tab = self.state.tab
        try:
            self._draw_tab(tab)
        except Exception as exc:  # noqa: BLE001 - shown on the page, which stays usable
            self._dirty.add(tab)
            self._show_problem(exc)
            return
        self._show_problem(None)
        self.last_refresh = datetime.now(self.state.tz)
        self._show_status()

    def _draw_tab(self, tab: str) -> None:
        if self.has_data and tab in self._dirty:
            self._dirty.discard(tab)
            if tab == "overview":
                self._draw_overview()
            elif tab == "breakdown":
                helper = getattr(self.lab, f"by_{self.state.group}")
                self.breakdown.show(helper(**self.query_args()), self.state.group)
            elif tab == "requests":
                self.viewer.reload(self.state.tz)
            elif tab == "claude-code":
                self.claude.refresh(self.lab, **self.query_args())

    def _draw_overview(self) -> None:
        s = self.state
        args = self.query_args()
        first, last = s.window()
        unit = s.unit()
        calendar_key = (tuple(sorted(s.filters().items())), s.timezone, last)
        with self.lab.snapshot() as lab:
            compare = lab.compare(**args)
            series = getattr(lab, _BY_PERIOD[unit])(by=s.stack, **args)
            frames = _shares(lab.by("project", "client", **args))
            if calendar_key != self._calendar_key:
                self._calendar_rows = lab.daily(since=last - timedelta(days=7 * 53), until=last,
                                                timezone=s.timezone, **s.filters())
                self._calendar_key = calendar_key
        days = (last - first).days + 1
        self.kpis.update(compare, f"{days} day{'s' if days != 1 else ''}")
        colors = self.controls_values(s.stack)
        self._chart("cost", charts.cost_over_time, series, ["pick"], by=s.stack, unit=unit, colors=colors,
                    width=960, height=240)
        self._chart("tokens", charts.tokens_over_time, series, [], unit=unit, width=430, height=200)
        self._chart("share", charts.cost_share, frames, ["pick_project", "pick_client"], rows_shown=8,
                    width=190)
        self._chart("calendar", charts.calendar_heatmap, self._calendar_rows, ["pick_day"], end=last,
                    since=first, until=last, cell=18)
        total = float(self._calendar_rows["cost_usd"].sum()) if len(self._calendar_rows) else 0.0
        active = int((self._calendar_rows["cost_usd"] > 0).sum()) if len(self._calendar_rows) else 0
        self.calendar_caption.value = (
            f'<div class="llmlab-card-sub">${total:,.2f} over {active:,} active days. The outlined days '
            f'are the selected range; click a day to look at it alone.</div>')

    def controls_values(self, name: str) -> list[str]:
        """The filter choices of a column (stable colours for the cost chart)."""
        return [v for _, v in self.controls.filters[name].options if v]

    def _chart(self, slot: str, builder, df, selections, **opts) -> None:
        attr = f"{slot}_chart"
        chart: LiveChart | None = getattr(self, attr)
        if chart is None:
            chart = LiveChart(builder, df, selections=selections, on_pick=self._chart_pick, **opts)
            setattr(self, attr, chart)
            self._chart_slots[slot].children = [chart.widget]
        else:
            chart.update(df, **opts)

    def _chart_pick(self, selection: str, value: dict) -> None:
        if selection == "pick_day":
            self._pick("day", value.get("day"))
        elif selection.startswith("pick_"):
            self._pick(selection[len("pick_"):], value.get("name"))
        else:
            field, picked = next(iter(value.items()))
            self._pick(field, picked)

    def _load_calls(self, **kw):
        return self.lab.requests_page(**self.query_args(), **kw)

    def _show_problem(self, exc: Exception | None) -> None:
        """A red note above the tabs when the store could not be read (locked, damaged, ...)."""
        if exc is None:
            self.problem.layout.display = "none"
            return
        self.problem.value = (f'<div class="llmlab-problem"><b>Could not read the usage store.</b> '
                              f'{html.escape(type(exc).__name__)}: {html.escape(str(exc))} '
                              f'<span>Press Refresh to try again.</span></div>')
        self.problem.layout.display = "block"

    def _show_banner(self, alerts: list[str]) -> None:
        if alerts:
            items = "".join(f"<li>{html.escape(a)}</li>" for a in alerts)
            self.banner.value = (f'<div class="llmlab-banner"><b>Budget alert</b>'
                                 f'<ul style="margin:4px 0 0 0;padding-left:18px">{items}</ul></div>')
            self.banner.layout.display = "block"
        else:
            self.banner.layout.display = "none"

    def _show_status(self) -> None:
        s = self.state
        parts = [f"<b>{html.escape(s.describe())}</b>", html.escape(s.timezone)]
        pending = self.lab.pending()
        if pending["segments"]:
            age = pending["oldest_age_s"] or 0
            parts.append(f"{pending['segments']} journal segment(s) waiting to be ingested "
                         f"(oldest {age:,.0f} s)")
        if self.last_refresh:
            parts.append(f"updated {self.last_refresh:%H:%M:%S}")
        self.status.value = f'<div class="llmlab-status">{" · ".join(parts)}</div>'

    # -- refresh and export ---------------------------------------------------------------
    def auto_refresh(self, seconds: int) -> None:
        """Refresh every ``seconds`` while the kernel runs (0 stops)."""
        if self._auto_task is not None:
            self._auto_task.cancel()
            self._auto_task = None
        if seconds:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = asyncio.get_event_loop()
            self._auto_task = loop.create_task(self._auto_loop(seconds))

    async def _auto_loop(self, seconds: int) -> None:
        while True:
            await asyncio.sleep(seconds)
            self.refresh(auto=True)

    def export_bytes(self, fmt: str) -> tuple[str, str, bytes]:
        """The current selection's calls as a CSV or Parquet file: ``(name, mime type, bytes)``."""
        args = self.query_args()
        first, last = args["since"], args["until"]
        tag = "-".join(str(v) for v in self.state.filters().values())
        name = f"llmlab-{first}_{last}{'-' + tag if tag else ''}.{fmt}".replace("/", "_")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            export(self.lab.store, path, fmt=fmt, **args)
            data = path.read_bytes()
        mime = "text/csv" if fmt == "csv" else "application/vnd.apache.parquet"
        return name, mime, data


def _shares(by_both: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Cost share per project and per client from one per-(project, client) breakdown: cost
    and requests add up, so one query serves both panels."""
    costs, calls = by_both["cost_usd"].astype(float).tolist(), by_both["requests"].tolist()
    total = sum(costs)
    out = {}
    for dim in ("project", "client"):
        sums: dict = {}
        for name, cost, n in zip(by_both[dim].tolist(), costs, calls):
            cell = sums.setdefault(name, [0.0, 0])
            cell[0] += cost
            cell[1] += int(n)
        out[dim] = pd.DataFrame({dim: list(sums), "cost_usd": [c for c, _ in sums.values()],
                                 "requests": [n for _, n in sums.values()],
                                 "share": [c / total if total else 0.0 for c, _ in sums.values()]})
    return out


def _selection(state: ViewState) -> ViewState:
    """The part of a view that decides which rows are read (not how they are shown)."""
    return state.replace(tab="overview", stack="model", group="model")


def _as_date(value) -> date:
    if isinstance(value, (int, float)):  # Vega hands temporal values over as epoch milliseconds
        return datetime.fromtimestamp(value / 1000, tz=timezone.utc).date()
    return date.fromisoformat(str(value)[:10])
