"""llmlab.charts: the builders' rows, their Vega-Lite structure, the fast spec path, and offline
rendering (vl-convert draws every chart without a network)."""

from __future__ import annotations

from datetime import date, timedelta

import altair as alt
import pandas as pd
import pytest
import vl_convert as vlc

import llmlab
from llmlab import charts
from llmlab.demo import seed_demo
from llmlab.store import Store

# A fixed, complete demo (a Wednesday): a date from the real clock is stale after midnight, and
# just after midnight today holds no calls yet, so the hourly chart would have nothing to draw.
END = date(2026, 11, 18)
SINCE, UNTIL = END - timedelta(days=29), END


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    home = tmp_path_factory.mktemp("charts-home")
    seed_demo(Store(home), days=120, end=END, progress=False)
    return llmlab.open(home)


def rows_of(spec: dict) -> list[dict]:
    (values,) = spec["datasets"].values()
    return values


def params_of(spec: dict) -> dict:
    out = {}
    for node in [spec, *spec.get("layer", []), *spec.get("hconcat", [])]:
        for p in node.get("params", []):
            out[p["name"]] = p
        for layer in node.get("layer", []):
            for p in layer.get("params", []):
                out[p["name"]] = p
    return out


def test_cost_over_time_stacks_cost_by_model_and_keeps_totals(lab):
    daily = lab.daily(by="model", since=SINCE, until=UNTIL)
    spec = charts.cost_over_time.spec(daily, by="model", top=5)
    rows = pd.DataFrame(rows_of(spec))
    assert rows["cost_usd"].sum() == pytest.approx(daily["cost_usd"].sum())
    kept = set(daily.groupby("model")["cost_usd"].sum().nlargest(5).index)
    assert set(rows["model"]) == kept | {charts.OTHER}
    assert rows["t"].str.endswith("T00:00:00Z").all()  # wall-clock days, drawn in UTC units
    assert spec["encoding"]["x"]["timeUnit"] == "utcyearmonthdate"
    assert params_of(spec)["pick"]["select"]["fields"] == ["model"]


def test_cost_over_time_colours_follow_the_given_domain(lab):
    daily = lab.daily(by="provider", since=SINCE, until=UNTIL)
    providers = lab.distinct("provider")
    spec = charts.cost_over_time.spec(daily, by="provider", colors=providers)
    scale = spec["encoding"]["color"]["scale"]
    assert scale["domain"] == providers + [charts.OTHER]
    assert len(scale["range"]) == len(scale["domain"])


def test_time_unit_follows_the_helpers_period_column(lab):
    hourly = lab.hourly(by="model", since=END, until=END)
    spec = charts.cost_over_time.spec(hourly, by="model")
    assert spec["encoding"]["x"]["timeUnit"] == "utcyearmonthdatehours"
    weekly = lab.weekly(since=END - timedelta(days=200), until=END)
    assert charts.tokens_over_time.spec(weekly)["encoding"]["x"]["timeUnit"] == "utcyearweek"


def test_fast_spec_matches_the_altair_chart(lab):
    daily = lab.daily(by="model", since=SINCE, until=UNTIL)
    built = charts.cost_over_time(daily, by="model", top=4).to_dict()
    fast = charts.cost_over_time.spec(daily, by="model", top=4)
    # The fast path keeps 15 significant digits (plenty for a chart); the rest is identical.
    pd.testing.assert_frame_equal(pd.DataFrame(rows_of(built)), pd.DataFrame(rows_of(fast)),
                                  check_exact=False, rtol=1e-13)
    strip = lambda d: {k: v for k, v in d.items() if k not in ("datasets", "data")}  # noqa: E731
    assert strip(built) == strip(fast)


def test_tokens_over_time_has_each_kind_per_period(lab):
    daily = lab.daily(since=SINCE, until=UNTIL)
    rows = pd.DataFrame(rows_of(charts.tokens_over_time.spec(daily)))
    sums = rows.groupby("kind")["tokens"].sum()
    assert sums["input"] == daily["input_tokens"].sum()
    assert sums["cache read"] == daily["cache_read_tokens"].sum()
    assert sums["cache write"] == daily["cache_write_tokens"].sum()
    assert sums["output"] == daily["output_tokens"].sum()
    assert len(rows) == 4 * len(daily)


def test_tokens_over_time_sums_a_grouped_frame(lab):
    by_model = lab.daily(by="model", since=SINCE, until=UNTIL)
    plain = lab.daily(since=SINCE, until=UNTIL)
    a = pd.DataFrame(rows_of(charts.tokens_over_time.spec(by_model)))
    b = pd.DataFrame(rows_of(charts.tokens_over_time.spec(plain)))
    assert a.sort_values(["t", "kind"]).reset_index(drop=True).equals(
        b.sort_values(["t", "kind"]).reset_index(drop=True))


def test_calendar_is_a_year_of_days_with_quartile_levels(lab):
    daily = lab.daily(since=END - timedelta(days=400), until=END)
    rows = charts.calendar_heatmap.shape(daily, end=END, since=SINCE, until=UNTIL)
    assert rows["day"].iloc[-1] == END.isoformat()
    assert rows["week"].max() == 52 and rows["weekday"].iloc[0] == 0  # 53 columns from a Monday
    assert len(rows) == 52 * 7 + END.weekday() + 1
    assert rows["cost_usd"].sum() == pytest.approx(
        daily[pd.to_datetime(daily["date"]) >= pd.Timestamp(rows["day"].iloc[0])]["cost_usd"].sum())
    active = rows[rows["cost_usd"] > 0]["cost_usd"]
    q1, q2, q3 = active.quantile([0.25, 0.5, 0.75])
    for cost, level in zip(rows["cost_usd"], rows["level"]):
        expected = 0 if cost <= 0 else 1 if cost <= q1 else 2 if cost <= q2 else 3 if cost <= q3 else 4
        assert level == expected
    assert set(rows["level"]) == {0, 1, 2, 3, 4}
    in_range = rows[rows["in_range"]]["day"]
    assert in_range.iloc[0] == SINCE.isoformat() and in_range.iloc[-1] == UNTIL.isoformat()
    labels = rows[rows["month"] != ""]["week"].to_list()
    assert all(b - a >= 3 for a, b in zip(labels, labels[1:]))  # month names never collide


def test_calendar_selection_and_tooltip(lab):
    spec = charts.calendar_heatmap.spec(lab.daily(since=END - timedelta(days=370), until=END), end=END)
    squares = spec["layer"][0]
    assert params_of(spec)["pick_day"]["select"]["fields"] == ["day"]
    assert [t["field"] for t in squares["encoding"]["tooltip"]] == ["label", "cost_usd", "requests"]
    assert squares["encoding"]["color"]["scale"]["range"] == charts.GREENS


def test_cost_share_panels_and_the_rest_summed(lab):
    frames = {"project": lab.by_project(since=SINCE, until=UNTIL),
              "client": lab.by_client(since=SINCE, until=UNTIL)}
    rows = pd.DataFrame(rows_of(charts.cost_share.spec(frames, rows_shown=3)))
    projects = rows[rows["dim"] == "project"]
    assert len(projects) == 3 and projects["name"].iloc[-1] == f"{len(frames['project']) - 2} more"
    assert projects["cost_usd"].sum() == pytest.approx(frames["project"]["cost_usd"].sum())
    assert projects["share"].sum() == pytest.approx(1.0)
    assert rows["text"].str.match(r"^\$[\d,]+\.\d\d · \d+%$").all()
    spec = charts.cost_share.spec(frames)
    assert set(params_of(spec)) == {"pick_project", "pick_client"}


def test_empty_frames_still_make_valid_charts(lab):
    nothing = lab.daily(by="model", since="2001-01-01", until="2001-01-02")
    assert nothing.empty
    for spec in (charts.cost_over_time.spec(nothing, by="model"),
                 charts.tokens_over_time.spec(nothing),
                 charts.calendar_heatmap.spec(lab.daily(since="2001-01-01", until="2001-12-31"),
                                              end=date(2001, 12, 31))):
        alt.Chart.from_dict(spec) if "layer" not in spec else alt.LayerChart.from_dict(spec)
        assert "<svg" in vlc.vegalite_to_svg(spec)


def test_every_chart_renders_offline(lab):
    daily = lab.daily(by="model", since=SINCE, until=UNTIL)
    frames = {"project": lab.by_project(since=SINCE, until=UNTIL),
              "client": lab.by_client(since=SINCE, until=UNTIL)}
    svgs = {
        "cost": vlc.vegalite_to_svg(charts.cost_over_time.spec(daily, by="model")),
        "tokens": vlc.vegalite_to_svg(charts.tokens_over_time.spec(daily)),
        "calendar": vlc.vegalite_to_svg(charts.calendar_heatmap.spec(
            lab.daily(since=END - timedelta(days=370), until=END), end=END)),
        "share": vlc.vegalite_to_svg(charts.cost_share.spec(frames)),
    }
    assert "claude-sonnet-4-5-20250929" in svgs["cost"]
    assert "cache read" in svgs["tokens"]
    assert "Mon" in svgs["calendar"] and "More" in svgs["calendar"]
    assert "atlas" in svgs["share"] and "acme" in svgs["share"]


def test_jupyter_chart_is_offline_and_reports_selections(lab):
    daily = lab.daily(by="model", since=SINCE, until=UNTIL)
    widget = charts.jupyter_chart(charts.cost_over_time(daily, by="model"))
    assert "esm.sh" not in widget._esm and "https://" not in widget._esm.split("\n", 1)[0]
    assert widget.embed_options == {"actions": False, "renderer": "svg"}
    seen = []
    widget.selections.observe(lambda c: seen.append(c["new"].value), "pick")
    # What the browser sends when a bar of gpt-4o is clicked:
    widget._vl_selections = {"pick": {"value": {"vlPoint": {"or": [{"model": "gpt-4o"}]}}, "store": []}}
    assert seen == [[{"model": "gpt-4o"}]]


def test_the_offline_bundle_is_built_once_and_reused_by_later_kernels(tmp_path):
    import subprocess
    import sys

    probe = ("import altair as alt, pandas as pd, llmlab.charts as ch; "
             "w = ch.jupyter_chart(alt.Chart(pd.DataFrame({'a': [1]})).mark_bar().encode(x='a:Q')); "
             "print(type(w).__name__, len(w._esm), 'esm.sh' in w._esm)")
    env = {**__import__("os").environ, "LLMLAB_HOME": str(tmp_path / "home")}
    first = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    cached = list((tmp_path / "home" / "cache").glob("vega-offline-*.js"))
    assert len(cached) == 1 and "esm.sh" not in cached[0].read_text(encoding="utf-8")
    second = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    name1, size1, cdn1 = first.stdout.split()
    name2, size2, cdn2 = second.stdout.split()
    assert (name1, name2) == ("JupyterChart", "OfflineJupyterChart")   # built, then read back
    assert size1 == size2 and cdn1 == cdn2 == "False"
