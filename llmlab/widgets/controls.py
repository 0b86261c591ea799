"""The controls bar: date range presets (and a custom range), filters, timezone, refresh."""

from __future__ import annotations

from collections.abc import Callable
from zoneinfo import available_timezones

import ipywidgets as w

from .state import FILTERS, PRESETS, ViewState

# Offered first in the timezone box; any IANA name can be typed.
_COMMON_ZONES = ["UTC", "Europe/London", "Europe/Berlin", "America/New_York", "America/Chicago",
                 "America/Los_Angeles", "Asia/Tokyo", "Asia/Kolkata", "Australia/Sydney"]
_ALL = {"project": "All projects", "client": "All clients", "model": "All models",
        "provider": "All providers", "source": "All sources"}
ALL = ""  # the "All projects" choice (a Dropdown shows nothing for None)
AUTO_REFRESH = [("Auto-refresh off", 0), ("every 10 s", 10), ("every 30 s", 30),
                ("every minute", 60), ("every 5 minutes", 300)]


class Controls:
    """Widgets that edit a :class:`ViewState`. ``on_change(fn)`` gets each new state; states
    set from outside with :meth:`show` (a URL, a chart click) do not call it back."""

    def __init__(self, state: ViewState):
        self._state = state
        self._listeners: list[Callable[[ViewState], None]] = []
        self._quiet = False
        self.range = w.ToggleButtons(options=[(label, key) for key, label in PRESETS.items()],
                                     value=state.range, style={"button_width": "auto"})
        self.range.add_class("llmlab-range")
        # Labels as separate HTML: a widget description is typeset, which would load MathJax
        # from a CDN under Voila.
        self.start = w.DatePicker(layout=w.Layout(width="150px"))
        self.end = w.DatePicker(layout=w.Layout(width="150px"))
        self.start.add_class("llmlab-from")
        self.end.add_class("llmlab-to")
        self.custom = w.HBox([w.HTML('<span class="llmlab-muted">from</span>'), self.start,
                              w.HTML('<span class="llmlab-muted">to</span>'), self.end],
                             layout=w.Layout(display="none", align_items="center", grid_gap="6px"))
        self.filters = {}
        for name in FILTERS:
            dd = w.Dropdown(options=[(_ALL[name], ALL)], value=ALL,
                            layout=w.Layout(width="180px"))
            dd.add_class("llmlab-filter")
            dd.add_class(f"llmlab-filter-{name}")
            self.filters[name] = dd
        zones = _COMMON_ZONES + sorted(available_timezones() - set(_COMMON_ZONES))
        self.timezone = w.Combobox(options=zones, value=state.timezone, ensure_option=True,
                                   placeholder="timezone", layout=w.Layout(width="190px"))
        self.timezone.add_class("llmlab-timezone")
        self.clear = w.Button(description="✕ Clear filters",
                              layout=w.Layout(width="auto", display="none"))
        self.clear.add_class("llmlab-clear")
        self.refresh = w.Button(description="↻ Refresh", layout=w.Layout(width="auto"))
        self.refresh.add_class("llmlab-refresh")
        self.auto = w.Dropdown(options=AUTO_REFRESH, value=0, layout=w.Layout(width="170px"))
        self.auto.add_class("llmlab-auto-refresh")

        self.range.observe(self._edited, "value")
        self.start.observe(self._edited, "value")
        self.end.observe(self._edited, "value")
        self.timezone.observe(self._edited, "value")
        for dd in self.filters.values():
            dd.observe(self._edited, "value")
        self.clear.on_click(lambda _b: self._emit(self._state.replace(**{k: None for k in FILTERS})))
        self.show(state)

    # -- state in and out ----------------------------------------------------------------
    @property
    def state(self) -> ViewState:
        return self._state

    def on_change(self, fn: Callable[[ViewState], None]) -> None:
        self._listeners.append(fn)

    def show(self, state: ViewState) -> None:
        """Make the widgets show ``state`` without reporting it back as an edit."""
        self._quiet = True
        try:
            self._state = state
            self.range.value = state.range
            first, last = state.window()
            self.start.value, self.end.value = first, last
            self.custom.layout.display = "flex" if state.range == "custom" else "none"
            for name, dd in self.filters.items():
                value = getattr(state, name)
                if value is not None and value not in [v for _, v in dd.options]:
                    dd.options = list(dd.options) + [(value, value)]
                dd.value = ALL if value is None else value
                if value is None:
                    dd.remove_class("active")
                else:
                    dd.add_class("active")
            self.timezone.value = state.timezone
            self.clear.layout.display = "flex" if state.filters() else "none"
        finally:
            self._quiet = False

    def set_options(self, values: dict[str, list]) -> None:
        """The choices of each filter (the store's distinct values); a current choice stays."""
        self._quiet = True
        try:
            for name, dd in self.filters.items():
                current = getattr(self._state, name)
                choices = [str(v) for v in values.get(name, [])]
                if current is not None and current not in choices:
                    choices.append(current)
                options = [(_ALL[name], ALL)] + [(v, v) for v in choices]
                if options != list(dd.options):
                    dd.options = options
                dd.value = ALL if current is None else current
        finally:
            self._quiet = False

    def _edited(self, change) -> None:
        if self._quiet:
            return
        s = self._state
        if change["owner"] is self.range:
            if change["new"] == "custom":
                first, last = s.window()
                s = s.replace(range="custom", start=first, end=last)
            else:
                s = s.replace(range=change["new"], start=None, end=None)
        elif change["owner"] in (self.start, self.end):
            if change["new"] is None:
                return  # a half-typed date: wait for a whole one
            s = s.replace(range="custom", start=self.start.value, end=self.end.value)
        elif change["owner"] is self.timezone:
            if not change["new"]:
                return
            s = s.replace(timezone=change["new"])
        else:
            name = next(k for k, dd in self.filters.items() if dd is change["owner"])
            s = s.replace(**{name: None if change["new"] == ALL else change["new"]})
        self._emit(s)

    def _emit(self, state: ViewState) -> None:
        self.show(state)
        for fn in self._listeners:
            fn(state)
