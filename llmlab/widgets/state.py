"""What the dashboard shows, as one value: date range, filters, timezone, tab.

A :class:`ViewState` turns into query-helper arguments (:meth:`ViewState.window`,
:meth:`ViewState.filters`) and into the page's URL query (:meth:`ViewState.query`), and back
(:meth:`ViewState.from_query`), so reloads, back/forward and shared links land on the same view.
Reading a URL is lenient: a value that does not parse falls back to the default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from ..errors import QueryError
from ..filters import zone

PRESETS = {  # key -> label, in the order the controls show them
    "today": "Today",
    "7d": "7 days",
    "30d": "30 days",
    "90d": "90 days",
    "month": "This month",
    "last-month": "Last month",
    "custom": "Custom",
}
FILTERS = ("project", "client", "model", "provider", "source")
TABS = ("overview", "breakdown", "requests", "budgets", "claude-code")
GROUPS = ("model", "provider", "project", "client")
STACKS = ("model", "provider")
_ROLLING = {"today": 1, "7d": 7, "30d": 30, "90d": 90}


@dataclass(frozen=True)
class ViewState:
    range: str = "30d"
    start: date | None = None      # custom range only
    end: date | None = None
    timezone: str = "UTC"
    project: str | None = None
    client: str | None = None
    model: str | None = None
    provider: str | None = None
    source: str | None = None
    stack: str = "model"           # cost over time: stacked by model or provider
    group: str = "model"           # breakdown table
    tab: str = "overview"

    def replace(self, **changes) -> "ViewState":
        return dataclasses.replace(self, **changes)

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.timezone)

    def today(self, now: datetime | None = None) -> date:
        return (now.astimezone(self.tz) if now else datetime.now(self.tz)).date()

    def window(self, today: date | None = None) -> tuple[date, date]:
        """First and last day (both inclusive) of the selected range."""
        today = today or self.today()
        if self.range in _ROLLING:
            return today - timedelta(days=_ROLLING[self.range] - 1), today
        if self.range == "month":
            return today.replace(day=1), today
        if self.range == "last-month":
            last = today.replace(day=1) - timedelta(days=1)
            return last.replace(day=1), last
        first = self.start or today - timedelta(days=29)
        last = self.end or today
        return (first, last) if first <= last else (last, first)

    def unit(self, today: date | None = None) -> str:
        """The time step of the charts: hours for a day or two, days, then weeks."""
        first, last = self.window(today)
        days = (last - first).days + 1
        return "hour" if days <= 2 else "day" if days <= 120 else "week"

    def filters(self) -> dict:
        """The column filters for the query helpers (only those that are set)."""
        return {k: getattr(self, k) for k in FILTERS if getattr(self, k) is not None}

    def query(self) -> dict[str, str]:
        """The URL query for this view: only what differs from the defaults, in a fixed order."""
        default = ViewState()
        out: dict[str, str] = {}
        if self.tab != default.tab:
            out["tab"] = self.tab
        if self.range != default.range:
            out["range"] = self.range
        if self.range == "custom":
            if self.start:
                out["from"] = self.start.isoformat()
            if self.end:
                out["to"] = self.end.isoformat()
        for k in FILTERS:
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        if self.timezone != default.timezone:
            out["tz"] = self.timezone
        if self.stack != default.stack:
            out["stack"] = self.stack
        if self.group != default.group:
            out["group"] = self.group
        return out

    @classmethod
    def from_query(cls, query: str | dict | None) -> "ViewState":
        """The view a URL query describes; anything that does not parse keeps its default."""
        if isinstance(query, str):
            params = dict(parse_qsl(query.lstrip("?"), keep_blank_values=False))
        else:
            params = dict(query or {})
        kw: dict = {}
        if params.get("tab") in TABS:
            kw["tab"] = params["tab"]
        if params.get("range") in PRESETS:
            kw["range"] = params["range"]
        for key, name in (("from", "start"), ("to", "end")):
            try:
                kw[name] = date.fromisoformat(params[key])
            except (KeyError, ValueError):
                pass
        for k in FILTERS:
            if params.get(k):
                kw[k] = params[k]
        if params.get("tz"):
            try:
                zone(params["tz"])
                kw["timezone"] = params["tz"]
            except QueryError:
                pass
        if params.get("stack") in STACKS:
            kw["stack"] = params["stack"]
        if params.get("group") in GROUPS:
            kw["group"] = params["group"]
        return cls(**kw)

    def describe(self, today: date | None = None) -> str:
        """A short human label for the window: "Oct 25 – Nov 23, 2026"."""
        first, last = self.window(today)
        if first == last:
            return f"{first:%a %b} {first.day}, {first.year}"
        if first.year == last.year:
            return f"{first:%b} {first.day} – {last:%b} {last.day}, {last.year}"
        return f"{first:%b} {first.day}, {first.year} – {last:%b} {last.day}, {last.year}"
