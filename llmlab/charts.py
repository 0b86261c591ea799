"""Altair chart builders: a query helper's DataFrame in, an altair chart out. No queries, no widgets.

    import llmlab, llmlab.charts as charts
    lab = llmlab.open()
    charts.cost_over_time(lab.daily(by="model", since="2026-10-01"), by="model")
    charts.calendar_heatmap(lab.daily(since="2025-11-01"), end="2026-10-31")

Every builder is two steps: *shape* turns the helper's DataFrame into the chart's rows, and *draw*
builds the chart's structure from its options only. ``builder(df, ...)`` does both and returns an
ordinary altair chart. ``builder.spec(df, ...)`` returns the Vega-Lite dict with the structure
drawn once and cached, only the rows swapped in: altair's object model costs ~50 ms a chart,
which a dashboard would otherwise pay on every filter change.

Times are wall-clock times in the timezone the query used. They travel as ISO strings marked
UTC and are drawn with UTC time units, so the browser's own timezone never shifts a day.
:func:`jupyter_chart` wraps a chart or spec in ``alt.JupyterChart`` with the offline bundle
(anywidget + vl-convert): nothing is loaded from a CDN.
"""

from __future__ import annotations

import functools
import json
from datetime import date

import altair as alt
import numpy as np
import pandas as pd

__all__ = [
    "cost_over_time", "tokens_over_time", "calendar_heatmap", "cost_share", "jupyter_chart",
    "PALETTE", "TOKEN_KINDS",
]

PALETTE = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b",
           "#9d755d", "#ff9da6", "#bab0ac", "#2f6f9f", "#8cd17d", "#d37295", "#79706e"]
OTHER = "other"
OTHER_COLOR = "#c9ccd1"
GREENS = ["#ebedf0", "#9be9a8", "#40c463", "#30a14e", "#216e39"]  # GitHub's contribution scale
TOKEN_KINDS = [  # (column, label, colour): stacked bottom to top
    ("input_tokens", "input", "#4c78a8"),
    ("cache_read_tokens", "cache read", "#9ecae9"),
    ("cache_write_tokens", "cache write", "#f58518"),
    ("output_tokens", "output", "#54a24b"),
]
# Time unit per period of a query helper, and how a tick or tooltip shows it.
_UNITS = {
    "hour": ("utcyearmonthdatehours", "%b %d, %H:00"),
    "day": ("utcyearmonthdate", "%a %b %d, %Y"),
    "week": ("utcyearweek", "week of %b %d, %Y"),
    "month": ("utcyearmonth", "%B %Y"),
}
_TIME_COLUMNS = ("hour", "date", "week", "month")
MONEY = "$,.2f"
_DAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
_MONTH_NAMES = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"


def _builder(*structure: str):
    """Split a builder into shape (data) and draw (structure named in ``structure``)."""

    def wrap(parts):
        shape, draw, defaults = (*parts(), None)[:3]

        def options(df, opts):
            return {**defaults(df), **opts} if defaults else opts

        @functools.wraps(parts)
        def build(df: pd.DataFrame, **opts) -> alt.TopLevelMixin:
            opts = options(df, opts)
            rows = shape(df, **opts)
            return _style(draw(rows, **{k: _freeze(opts[k]) for k in structure if k in opts}))

        def spec(df: pd.DataFrame, **opts) -> dict:
            opts = options(df, opts)
            rows = shape(df, **opts)
            key = tuple((k, _freeze(opts.get(k))) for k in structure)
            return _with_rows(_template(draw, key, rows.iloc[:0]), rows)

        def empty(df: pd.DataFrame, **opts) -> alt.TopLevelMixin:
            """The chart's structure without rows (what :meth:`spec` fills in)."""
            opts = options(df, opts)
            key = tuple((k, _freeze(opts.get(k))) for k in structure)
            _template(draw, key, shape(df, **opts).iloc[:0])
            return _charts[(draw, key)]

        build.spec = spec
        build.empty = empty
        build.shape = shape
        return build

    return wrap


def _freeze(v):
    return tuple(v) if isinstance(v, (list, tuple)) else v


_templates: dict = {}
_charts: dict = {}


def _template(draw, key, empty_rows: pd.DataFrame) -> dict:
    cache_key = (draw, key)
    if cache_key not in _templates:
        kw = {k: v for k, v in key if v is not None}
        _charts[cache_key] = _style(draw(empty_rows, **kw))
        _templates[cache_key] = _charts[cache_key].to_dict()
    return _templates[cache_key]


def _with_rows(template: dict, rows: pd.DataFrame) -> dict:
    spec = dict(template)
    (name,) = template["datasets"]
    spec["datasets"] = {name: _records(rows)}
    return spec


def _records(rows: pd.DataFrame) -> list[dict]:
    """Rows as JSON-ready dicts (15 significant digits, missing values as null)."""
    return json.loads(rows.to_json(orient="records", double_precision=15))


def _style(chart):
    return chart.configure(font=FONT).configure_view(strokeWidth=0).configure_axis(
        labelColor="#57606a", titleColor="#57606a", gridColor="#eaeef2", domainColor="#d0d7de",
        tickColor="#d0d7de", labelFontSize=11, titleFontSize=11, titleFontWeight="normal",
    ).configure_legend(labelColor="#24292f", titleColor="#57606a", labelFontSize=11,
                       titleFontSize=11, titleFontWeight="normal", symbolType="square",
                       labelLimit=220)


def _time_column(df: pd.DataFrame) -> str:
    for c in _TIME_COLUMNS:
        if c in df.columns:
            return c
    raise ValueError(f"expected one of the columns {', '.join(_TIME_COLUMNS)} (a query helper's period)")


def _unit_of(df: pd.DataFrame) -> dict:
    return {"unit": {"date": "day"}.get(_time_column(df), _time_column(df))}


def _iso_utc(values) -> list[str]:
    """Wall-clock times as ISO strings marked UTC (see the module docstring)."""
    stamps = pd.to_datetime(pd.Series(values)).to_numpy().astype("datetime64[s]")
    return [f"{v}Z" for v in np.datetime_as_string(stamps, unit="s")]


def _names(values) -> list[str]:
    return ["(none)" if v is None or v != v else str(v) for v in values]  # v != v: NaN



def _colors(domain, with_other: bool) -> alt.Scale:
    if not domain:
        return alt.Scale(range=PALETTE)
    domain = [d for d in domain if d != OTHER]
    rng = [PALETTE[i % len(PALETTE)] for i in range(len(domain))]
    if with_other:
        domain, rng = domain + [OTHER], rng + [OTHER_COLOR]
    return alt.Scale(domain=domain, range=rng)


# -- cost over time ---------------------------------------------------------------------------
@_builder("by", "unit", "colors", "width", "height")
def cost_over_time():
    """Cost per period stacked by model or provider; clicking a bar or legend entry selects it
    (selection ``pick`` on the ``by`` field). ``df`` is ``lab.daily(by=...)`` (or hourly, weekly,
    monthly); the ``top`` most expensive keys are kept and the rest summed as "other"."""

    def shape(df, *, by="model", unit=None, colors=None, top=10, width=None, height=None):
        # Inputs are a few hundred rows: plain Python beats pandas' per-call overhead here.
        times, keys = _iso_utc(df[_time_column(df)]), _names(df[by])
        costs, calls = df["cost_usd"].astype(float).tolist(), df["requests"].tolist()
        per_key: dict[str, float] = {}
        for k, c in zip(keys, costs):
            per_key[k] = per_key.get(k, 0.0) + c
        ranking = sorted(per_key, key=lambda k: (-per_key[k], k))
        keep = set(ranking[:top]) if len(ranking) > top + 1 else set(ranking)
        cells: dict[tuple[str, str], list] = {}
        for t, k, c, n in zip(times, keys, costs, calls):
            cell = cells.setdefault((t, k if k in keep else OTHER), [0.0, 0])
            cell[0] += c
            cell[1] += int(n)
        order = sorted(cells)
        return pd.DataFrame({"t": [t for t, _ in order], by: [k for _, k in order],
                             "cost_usd": [cells[o][0] for o in order],
                             "requests": pd.Series([cells[o][1] for o in order], dtype="int64")})

    def draw(rows, *, by="model", unit="day", colors=None, width=560, height=260):
        time_unit, fmt = _UNITS[unit]
        pick = alt.selection_point(name="pick", fields=[by], bind="legend", on="click")
        return alt.Chart(rows).mark_bar().encode(
            x=alt.X("t:T", timeUnit=time_unit, title=None,
                    axis=alt.Axis(labelOverlap=True)),
            y=alt.Y("sum(cost_usd):Q", title="cost (USD)", axis=alt.Axis(format="$,.2~f")),
            color=alt.Color(f"{by}:N", scale=_colors(colors, True), title=by,
                            sort=list(colors) + [OTHER] if colors else "ascending"),
            order=alt.Order(f"{by}:N"),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.25)),
            tooltip=[alt.Tooltip("t:T", timeUnit=time_unit, title=unit, format=fmt),
                     alt.Tooltip(f"{by}:N"), alt.Tooltip("sum(cost_usd):Q", title="cost", format=MONEY),
                     alt.Tooltip("sum(requests):Q", title="requests", format=",")],
        ).add_params(pick).properties(width=width or 560, height=height or 260)

    return shape, draw, _unit_of


# -- tokens over time -------------------------------------------------------------------------
@_builder("unit", "width", "height")
def tokens_over_time():
    """Tokens per period stacked by kind: input, cache read, cache write, output (reasoning is part
    of output). ``df`` is ``lab.daily()`` or any helper result with a period column; rows of the
    same period (e.g. ``by="model"``) are summed."""

    def shape(df, *, unit=None, width=None, height=None):
        cols = [c for c, _, _ in TOKEN_KINDS]
        per: dict[str, list[int]] = {}
        for t, *values in zip(_iso_utc(df[_time_column(df)]), *(df[c].tolist() for c in cols)):
            sums = per.setdefault(t, [0] * len(cols))
            for i, v in enumerate(values):
                sums[i] += int(v or 0)
        times = sorted(per)
        return pd.DataFrame({
            "t": [t for t in times for _ in cols],
            "kind": [label for _ in times for _, label, _ in TOKEN_KINDS],
            "order": [i for _ in times for i in range(len(cols))],
            "tokens": pd.Series([per[t][i] for t in times for i in range(len(cols))], dtype="int64"),
        })

    def draw(rows, *, unit="day", width=560, height=260):
        time_unit, fmt = _UNITS[unit]
        kinds = [label for _, label, _ in TOKEN_KINDS]
        return alt.Chart(rows).mark_bar().encode(
            x=alt.X("t:T", timeUnit=time_unit, title=None, axis=alt.Axis(labelOverlap=True)),
            y=alt.Y("sum(tokens):Q", title="tokens", axis=alt.Axis(format="~s")),
            color=alt.Color("kind:N", title=None, sort=kinds,
                            scale=alt.Scale(domain=kinds, range=[c for _, _, c in TOKEN_KINDS]),
                            legend=alt.Legend(orient="top", direction="horizontal")),
            order=alt.Order("order:Q"),
            tooltip=[alt.Tooltip("t:T", timeUnit=time_unit, title=unit, format=fmt),
                     alt.Tooltip("kind:N"), alt.Tooltip("sum(tokens):Q", title="tokens", format=",")],
        ).properties(width=width or 560, height=height or 260)

    return shape, draw, _unit_of


# -- calendar heatmap -------------------------------------------------------------------------
@_builder("weeks", "cell")
def calendar_heatmap():
    """A GitHub contribution-style year of daily spend: one square a day, weeks as columns
    (Monday on top), colour by quartile of the days that had any spend. ``df`` is ``lab.daily()``
    over the year ending at ``end``; days between ``since`` and ``until`` are outlined. Clicking
    a day selects it (selection ``pick_day`` on the ``day`` field, ``YYYY-MM-DD``)."""

    def shape(df, *, end=None, weeks=53, since=None, until=None, cell=None):
        end = pd.Timestamp(end or date.today()).normalize()
        start = end - pd.Timedelta(days=end.weekday()) - pd.Timedelta(weeks=weeks - 1)
        days = pd.date_range(start, end, freq="D")
        if df.empty:
            spend, calls = np.zeros(len(days)), np.zeros(len(days), dtype="int64")
        else:
            per_day = df.set_index(pd.to_datetime(df["date"]))
            spend = per_day["cost_usd"].astype(float).reindex(days, fill_value=0.0).to_numpy()
            calls = per_day["requests"].reindex(days, fill_value=0).to_numpy()
        week = (days - start).days // 7
        rows = pd.DataFrame({"day": np.datetime_as_string(days.to_numpy(), unit="D"), "cost_usd": spend,
                             "requests": calls, "week": week, "weekday": days.weekday})
        rows["level"] = _quartile_levels(rows["cost_usd"])
        inside = np.full(len(days), since is not None or until is not None)
        if since is not None:
            inside &= days >= pd.Timestamp(since)
        if until is not None:
            inside &= days <= pd.Timestamp(until)
        rows["in_range"] = inside
        # A month's name sits over the first week column whose Monday falls in that month;
        # like GitHub, a name that would run into the next one is dropped.
        mondays = days[days.weekday == 0]
        firsts = [(int(w), m.strftime("%b")) for w, m, new in zip(
            week[days.weekday == 0], mondays, np.r_[True, mondays.month[1:] != mondays.month[:-1]]) if new]
        labels = {w: name for (w, name), (nxt, _) in zip(firsts, firsts[1:] + [(weeks + 3, "")])
                  if nxt - w >= 3}
        month = np.full(len(days), "", dtype=object)
        for w, name in labels.items():
            month[w * 7] = name  # row w * 7 is that week's Monday
        rows["month"] = month
        rows["label"] = [f"{_DAY_NAMES[wd]} {_MONTH_NAMES[m - 1]} {d:02d}, {y}"
                         for wd, m, d, y in zip(days.weekday, days.month, days.day, days.year)]
        return rows

    def draw(rows, *, weeks=53, cell=14):
        step = cell + 3
        pick = alt.selection_point(name="pick_day", fields=["day"], on="click")
        base = alt.Chart(rows)
        x = alt.X("week:O", axis=None, scale=alt.Scale(domain=list(range(weeks))))
        squares = base.mark_rect(cornerRadius=2, width=cell, height=cell).encode(
            x=x,
            y=alt.Y("weekday:O", title=None, scale=alt.Scale(domain=list(range(7))),
                    axis=alt.Axis(labelExpr="['Mon', '', 'Wed', '', 'Fri', '', ''][datum.value]",
                                  ticks=False, domain=False, labelPadding=4)),
            color=alt.Color("level:O", scale=alt.Scale(domain=[0, 1, 2, 3, 4], range=GREENS),
                            legend=alt.Legend(
                                title=None, orient="bottom", direction="horizontal",
                                labelExpr="datum.value == 0 ? 'Less' : datum.value == 4 ? 'More' : ''",
                                symbolSize=120, symbolStrokeWidth=0)),
            stroke=alt.condition("datum.in_range", alt.value("#0969da"), alt.value(None)),
            strokeWidth=alt.condition("datum.in_range", alt.value(1.5), alt.value(0)),
            tooltip=[alt.Tooltip("label:N", title="day"),
                     alt.Tooltip("cost_usd:Q", title="spend", format=MONEY),
                     alt.Tooltip("requests:Q", title="calls", format=",")],
        ).add_params(pick)
        months = base.transform_filter("datum.month != ''").mark_text(
            align="left", baseline="bottom", dy=-4, fontSize=10, color="#57606a",
        ).encode(x=x, y=alt.value(0), text="month:N")
        return alt.layer(squares, months).properties(width=weeks * step, height=7 * step)

    return shape, draw


def _quartile_levels(spend: pd.Series) -> np.ndarray:
    """0 for a day without spend, else 1-4 by quartile of the days with spend."""
    values = spend.to_numpy(dtype=float)
    active = values[values > 0]
    if active.size == 0:
        return np.zeros(len(values), dtype="int64")
    q1, q2, q3 = np.quantile(active, [0.25, 0.5, 0.75])  # linear, as pandas' Series.quantile
    return np.select([values <= 0, values <= q1, values <= q2, values <= q3], [0, 1, 2, 3], 4)


# -- cost share -------------------------------------------------------------------------------
@_builder("dims", "rows_shown", "width")
def cost_share():
    """Cost share side by side for each given breakdown, e.g. ``{"project": lab.by_project(),
    "client": lab.by_client()}``: horizontal bars labelled with cost and share; past
    ``rows_shown`` the rest is summed into one bar. Clicking a bar selects it (selection
    ``pick_<breakdown>`` on the field ``name``)."""

    def shape(frames, *, dims=None, rows_shown=None, width=None):
        out: dict[str, list] = {"dim": [], "name": [], "cost_usd": [], "share": [], "requests": []}
        for dim, df in frames.items():
            part = sorted(zip(df["cost_usd"].astype(float).tolist(), _names(df[dim]),
                              df["share"].astype(float).tolist(), df["requests"].tolist()),
                          key=lambda r: (-r[0], r[1]))
            if rows_shown and len(part) > rows_shown:
                rest = part[rows_shown - 1:]
                part = part[:rows_shown - 1] + [(sum(r[0] for r in rest), f"{len(rest)} more",
                                                 sum(r[2] for r in rest), sum(r[3] for r in rest))]
            for cost, name, share, calls in part:
                for key, value in zip(out, (dim, name, cost, share, int(calls))):
                    out[key].append(value)
        rows = pd.DataFrame(out).astype({"cost_usd": float, "share": float, "requests": "int64"})
        rows["text"] = [f"${c:,.2f} · {s:.0%}" for c, s in zip(rows["cost_usd"], rows["share"])]
        return rows

    def draw(rows, *, dims=("project", "client"), rows_shown=8, width=270):
        panels = []
        for dim in dims:
            pick = alt.selection_point(name=f"pick_{dim}", fields=["name"], on="click")
            base = alt.Chart(rows).transform_filter(alt.datum.dim == dim)
            y = alt.Y("name:N", title=None, sort=alt.EncodingSortField("cost_usd", order="descending"),
                      axis=alt.Axis(labelLimit=130, ticks=False, domain=False))
            bars = base.mark_bar(cornerRadiusEnd=3, height=16).encode(
                y=y, x=alt.X("cost_usd:Q", title=None, axis=None, scale=alt.Scale(nice=False)),
                color=alt.condition(pick, alt.value("#4c78a8"), alt.value("#b6c8de")),
                tooltip=[alt.Tooltip("name:N", title=dim),
                         alt.Tooltip("cost_usd:Q", title="cost", format=MONEY),
                         alt.Tooltip("share:Q", format=".1%"),
                         alt.Tooltip("requests:Q", format=",")],
            ).add_params(pick)
            labels = base.mark_text(align="left", dx=4, fontSize=11, color="#24292f").encode(
                y=y, x=alt.X("cost_usd:Q"), text="text:N")
            panels.append(alt.layer(bars, labels).properties(
                title=alt.TitleParams(f"by {dim}", anchor="start", fontSize=12, fontWeight="normal",
                                      color="#57606a"),
                width=width or 270, height=alt.Step(24)))
        return alt.hconcat(*panels, spacing=40).resolve_scale(x="independent", y="independent")

    return shape, draw, lambda frames: {"dims": tuple(frames)}


# -- rendering --------------------------------------------------------------------------------
_EMBED_OPTIONS = {"actions": False, "renderer": "svg"}


def jupyter_chart(chart_or_spec) -> alt.JupyterChart:
    """An offline ``alt.JupyterChart`` (no CDN) for an altair chart or a builder's ``.spec``.
    SVG rendering keeps the marks crisp and addressable; the vega-embed menu is off."""
    from ._offline_vega import chart_class

    if isinstance(chart_or_spec, dict):
        chart = alt.Chart.from_dict(chart_or_spec)
    else:
        chart = chart_or_spec
    return chart_class()(chart, embed_options=dict(_EMBED_OPTIONS))
