"""llmlab.widgets without a browser: the callbacks behind every control, click and button,
driven the way the frontend drives them (setting synced traits, sending custom messages), over
a real demo store. Expected numbers come from SQL written here, not from the helpers."""

from __future__ import annotations

import asyncio
import html
import io
import json
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pandas as pd
import pyarrow.parquet as pq
import pytest

import llmlab
from llmlab.demo import seed_demo
from llmlab.store import Store, UsageRecord
from llmlab.widgets import Dashboard, ViewState, as_xml, messages
from llmlab.widgets import format as fmt
from llmlab.widgets.budgets import banner_lines, current_alerts
from llmlab.widgets.server import empty_state_html, first_request_snippet

from clock import pin_now

# The demo tests run "at" noon of a fixed Wednesday mid-month: a date read from the real clock is
# stale after midnight, and just after midnight (or on the 1st) "today" and "this month" hold
# few or no demo calls. The dashboard and the budgets read this instant (see clock.py).
TODAY = date(2026, 11, 18)
NOW = datetime(2026, 11, 18, 12, 0, tzinfo=timezone.utc)


def pin_the_dashboard_clock(monkeypatch) -> None:
    from llmlab.policy import budgets as policy_budgets
    from llmlab.policy import report as policy_report
    from llmlab.widgets import dashboard as dashboard_module
    from llmlab.widgets import state as state_module

    pin_now(monkeypatch, NOW, state_module, dashboard_module, policy_budgets, policy_report)


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("widgets-home")
    seed_demo(Store(home), days=90, end=TODAY, progress=False)
    return home


@pytest.fixture
def lab(demo_home, monkeypatch):
    pin_the_dashboard_clock(monkeypatch)
    return llmlab.open(demo_home)


@pytest.fixture
def dash(lab, monkeypatch):
    monkeypatch.delenv("VOILA_REQUEST_URL", raising=False)
    return Dashboard(lab, query="")


def spend_sql(lab, first: date, last: date, tz: str = "UTC", **filters) -> Decimal:
    where = " AND ".join(f"{k} = ?" for k in filters) or "TRUE"
    df = lab.sql(
        "SELECT coalesce(sum(cost_usd), 0) AS s FROM requests WHERE "
        "timezone(?, started_at)::DATE BETWEEN ? AND ? AND " + where,
        [tz, first, last, *filters.values()])
    return Decimal(str(df["s"].iloc[0]))


def tile_value(dash, key: str) -> str:
    tile = dash.kpis.tiles[key].value
    return tile.split('class="llmlab-kpi-value">', 1)[1].split("<", 1)[0]


def select(chart, name: str, point: dict) -> None:
    """What the browser sends when a mark is clicked (anywidget syncs _vl_selections)."""
    chart.widget._vl_selections = {**chart.widget._vl_selections,
                                   name: {"value": {"vlPoint": {"or": [point]}}, "store": []}}


# -- formatting and view state -------------------------------------------------------------
def test_formats_read_like_money_and_counts():
    assert fmt.money(1234.5) == "$1,234.50"
    assert fmt.money(0.0042) == "$0.0042"
    assert fmt.money(0) == "$0.00" and fmt.money(None) == "—"
    assert fmt.money_fine(0.06123) == "$0.0612" and fmt.money_fine(12.5) == "$12.50"
    assert fmt.count(1234567) == "1,234,567"
    assert fmt.compact(9_523_112) == "9.5M" and fmt.compact(845) == "845"
    assert fmt.duration(845) == "845 ms" and fmt.duration(1240) == "1.24 s"
    assert fmt.duration(125_000) == "2m 05s"
    assert fmt.percent(0.0215) == "2.1%"
    assert fmt.change(110, 100) == ("▲ 10.0%", 1)
    assert fmt.change(90, 100) == ("▼ 10.0%", -1)
    assert fmt.change(5, 0) == ("new", 1) and fmt.change(0, 0) == ("no change", 0)


def test_presets_give_the_right_windows():
    today = date(2026, 3, 15)
    window = lambda r, **kw: ViewState(range=r, **kw).window(today)  # noqa: E731
    assert window("today") == (today, today)
    assert window("7d") == (date(2026, 3, 9), today)
    assert window("30d") == (date(2026, 2, 14), today)
    assert window("month") == (date(2026, 3, 1), today)
    assert window("last-month") == (date(2026, 2, 1), date(2026, 2, 28))
    assert window("custom", start=date(2026, 1, 9), end=date(2026, 1, 2)) == (date(2026, 1, 2), date(2026, 1, 9))
    assert ViewState(range="today").unit(today) == "hour"
    assert ViewState(range="30d").unit(today) == "day"
    assert ViewState(range="custom", start=date(2025, 1, 1), end=today).unit(today) == "week"


def test_view_state_round_trips_through_the_url():
    s = ViewState(range="custom", start=date(2026, 10, 1), end=date(2026, 10, 31), project="atlas",
                  timezone="Europe/Berlin", tab="requests", stack="provider", group="client")
    q = s.query()
    assert q == {"tab": "requests", "range": "custom", "from": "2026-10-01", "to": "2026-10-31",
                 "project": "atlas", "tz": "Europe/Berlin", "stack": "provider", "group": "client"}
    assert ViewState.from_query(q) == s
    assert ViewState.from_query("token=abc&" + "&".join(f"{k}={v}" for k, v in q.items())) == s
    assert ViewState().query() == {}


def test_a_bad_url_falls_back_to_defaults():
    s = ViewState.from_query("tab=nope&range=forever&from=2026-13-01&tz=Mars/Base&stack=x&model=gpt-4o")
    assert s == ViewState(model="gpt-4o")


# -- KPI tiles, filters and the URL ----------------------------------------------------------
def test_spend_tile_matches_sql_and_follows_the_project_filter(dash, lab):
    first, last = TODAY - timedelta(days=29), TODAY
    assert tile_value(dash, "spend") == f"${spend_sql(lab, first, last):,.2f}"
    dash.controls.filters["project"].value = "atlas"     # the user picks a project
    assert dash.state.project == "atlas"
    assert tile_value(dash, "spend") == f"${spend_sql(lab, first, last, project='atlas'):,.2f}"
    assert dash.url.query == {"project": "atlas"}
    dash.controls.clear.click()
    assert dash.state.project is None and dash.url.query == {}


def test_tiles_compare_with_the_previous_period_of_equal_length(dash, lab):
    dash.controls.range.value = "7d"
    first, last = TODAY - timedelta(days=6), TODAY
    now, before = spend_sql(lab, first, last), spend_sql(lab, first - timedelta(days=7), first - timedelta(days=1))
    tile = dash.kpis.tiles["spend"].value
    text, _ = fmt.change(float(now), float(before))
    assert text in tile and "vs previous 7 days" in tile
    requests = lab.sql("SELECT count(*) AS n, count(*) FILTER (WHERE status_code >= 400 OR error_type IS NOT NULL) AS e "
                       "FROM requests WHERE started_at::DATE BETWEEN ? AND ?", [first, last])
    assert tile_value(dash, "requests") == f"{int(requests['n'][0]):,}"
    assert tile_value(dash, "error_rate") == f"{requests['e'][0] / requests['n'][0] * 100:.1f}%"
    p95 = lab.sql("SELECT quantile_cont(duration_ms, 0.95) AS p FROM requests WHERE started_at::DATE BETWEEN ? AND ?",
                  [first, last])["p"][0]
    assert tile_value(dash, "p95_latency") == fmt.duration(p95)


def test_custom_range_and_timezone(dash, lab):
    dash.controls.range.value = "custom"
    dash.controls.start.value = TODAY - timedelta(days=10)
    dash.controls.end.value = TODAY - timedelta(days=3)
    dash.controls.timezone.value = "America/New_York"
    s = dash.state
    assert (s.range, s.start, s.end, s.timezone) == ("custom", TODAY - timedelta(days=10),
                                                     TODAY - timedelta(days=3), "America/New_York")
    expected = spend_sql(lab, s.start, s.end, tz="America/New_York")
    assert tile_value(dash, "spend") == f"${expected:,.2f}"
    assert dash.url.query["tz"] == "America/New_York" and dash.url.query["from"] == s.start.isoformat()


def test_back_and_forward_in_the_browser_reapply_the_view(dash, lab):
    dash.url.query = {"project": "billing-bot", "range": "7d"}   # popstate: the URL changed
    assert dash.state.project == "billing-bot" and dash.state.range == "7d"
    assert dash.controls.filters["project"].value == "billing-bot"
    assert tile_value(dash, "spend") == f"${spend_sql(lab, TODAY - timedelta(days=6), TODAY, project='billing-bot'):,.2f}"
    dash.url.query = {"range": "forever"}                      # a hand-edited URL is tidied in place
    assert dash.state.range == "30d" and dash.url.query == {} and dash.url.replace


def test_a_shared_link_opens_on_its_view(lab, monkeypatch):
    monkeypatch.setenv("QUERY_STRING", "token=x&tab=breakdown&group=client&project=atlas")
    dash = Dashboard(lab)
    assert dash.tabs.selected_index == 1 and dash.breakdown.group.value == "client"
    assert [r["client"] for r in dash.breakdown.table.widget.rows] == ["acme"]


# -- charts filter the page ------------------------------------------------------------------
def test_clicking_a_model_filters_the_page(dash, lab):
    select(dash.cost_chart, "pick", {"model": "gpt-4o"})
    assert dash.state.model == "gpt-4o"
    assert dash.controls.filters["model"].value == "gpt-4o"
    first, last = dash.state.window()
    assert tile_value(dash, "spend") == f"${spend_sql(lab, first, last, model='gpt-4o'):,.2f}"
    select(dash.cost_chart, "pick", {"model": "other"})        # the "other" bar filters nothing
    assert dash.state.model == "gpt-4o"


def test_clicking_a_provider_when_stacked_by_provider(dash):
    dash.stack.value = "provider"
    assert dash.url.query == {"stack": "provider"}
    select(dash.cost_chart, "pick", {"provider": "anthropic"})
    assert dash.state.provider == "anthropic"


def test_clicking_a_day_in_the_calendar_shows_that_day(dash, lab):
    day = TODAY - timedelta(days=5)
    select(dash.calendar_chart, "pick_day", {"day": day.isoformat()})
    assert (dash.state.range, dash.state.start, dash.state.end) == ("custom", day, day)
    assert tile_value(dash, "spend") == f"${spend_sql(lab, day, day):,.2f}"


def test_clicking_a_share_bar_filters_by_project_or_client(dash):
    select(dash.share_chart, "pick_client", {"name": "globex"})
    assert dash.state.client == "globex"
    select(dash.share_chart, "pick_project", {"name": "docs-search"})
    assert dash.state.project == "docs-search"
    select(dash.share_chart, "pick_client", {"name": "(none)"})      # calls without a client
    assert dash.state.client == "globex"


def test_an_empty_selection_from_a_redraw_changes_nothing(dash):
    before = dash.state
    dash.cost_chart.widget._vl_selections = {"pick": {"value": None, "store": []}}
    assert dash.state == before


# -- breakdown tables -------------------------------------------------------------------------
def test_breakdown_sorts_and_filters(dash, lab):
    dash.tabs.selected_index = 1
    assert dash.url.query == {"tab": "breakdown"}
    table = dash.breakdown.table.widget
    by_cost = [r["model"] for r in table.rows]
    first, last = dash.state.window()
    expected = lab.sql("SELECT model, sum(cost_usd) c FROM requests WHERE started_at::DATE BETWEEN ? AND ? "
                       "GROUP BY model ORDER BY c DESC NULLS LAST", [first, last])
    assert by_cost[:5] == expected["model"].to_list()[:5]
    table.sort_by, table.descending = "requests", False        # header clicks
    counts = [int(r["requests"].replace(",", "")) for r in table.rows]
    assert counts == sorted(counts)
    table.sort_by = "model"
    names = [r["model"] for r in table.rows]
    assert names == sorted(names, reverse=table.descending)
    dash.breakdown.group.value = "project"
    assert [c["key"] for c in table.columns][0] == "project"
    table.selected = "research"                                # a row click
    assert dash.state.project == "research"
    assert [r["project"] for r in table.rows] == ["research"]


# -- request viewer ---------------------------------------------------------------------------
def test_request_viewer_pages_and_opens_a_conversation(dash, lab):
    dash.controls.range.value = "90d"
    dash.tabs.selected_index = 2
    viewer = dash.viewer
    first, last = dash.state.window()
    total = int(lab.sql("SELECT count(*) n FROM requests WHERE started_at::DATE BETWEEN ? AND ?",
                        [first, last])["n"][0])
    assert viewer.total == total and len(viewer.table.widget.rows) == 20
    assert f"of {total:,} calls" in viewer.position.value and viewer.prev.disabled
    newest = viewer.table.widget.rows[0]["_key"]
    viewer.next.click()
    assert viewer.page == 1 and newest not in [r["_key"] for r in viewer.table.widget.rows]
    viewer.prev.click()
    assert viewer.table.widget.rows[0]["_key"] == newest

    viewer.only_conversations.value = True
    stored = lab.sql("SELECT request_id, request_body, response_body FROM requests "
                     "WHERE request_body IS NOT NULL AND started_at::DATE BETWEEN ? AND ? "
                     "ORDER BY started_at DESC, request_id", [first, last])
    assert viewer.total == len(stored) > 0
    viewer.table.widget.selected = stored["request_id"][0]     # a row click
    assert viewer.detail.layout.display == "flex"
    req, resp = json.loads(stored["request_body"][0]), json.loads(stored["response_body"][0])
    question = req["messages"][-1]["content"]
    answer = resp["choices"][0]["message"]["content"]
    assert html.escape(question) in viewer.body.value and html.escape(answer) in viewer.body.value
    assert viewer.copy.text == (f"<system>\n{req['messages'][0]['content']}\n</system>\n"
                                f"<user>\n{question}\n</user>\n<assistant>\n{answer}\n</assistant>")
    viewer.mode.value = "json"
    assert "&quot;request_body&quot;" in viewer.body.value and stored["request_id"][0] in viewer.body.value
    viewer.mode.value = "conversation"
    assert "llmlab-msg role-user" in viewer.body.value


def test_the_viewer_finds_a_call_by_its_start_time_too(dash, lab, monkeypatch):
    """``requests`` has no index on request_id: the viewer passes the row's start time, which
    the store finds through zone maps; a wrong time finds nothing, and the viewer then asks by
    id alone."""
    dash.tabs.selected_index = 2
    key = dash.viewer.table.widget.rows[0]["_key"]
    started = dash.viewer._started[key]
    call = lab.request(key)
    assert call is not None and lab.request(key, started_at=started) == call
    assert lab.request(key, started_at=started - pd.Timedelta(seconds=1)) is None
    asked = []
    real = dash.viewer._fetch
    monkeypatch.setattr(dash.viewer, "_fetch", lambda rid, **kw: asked.append(kw) or real(rid, **kw))
    dash.viewer.table.widget.selected = key
    assert asked == [{"started_at": started}] and dash.viewer.current == call
    dash.viewer._started[key] = started - pd.Timedelta(seconds=1)   # a stale page
    asked.clear()
    dash.viewer.open(key)
    assert len(asked) == 2 and dash.viewer.current == call


def test_a_call_without_a_body_says_so(dash):
    dash.tabs.selected_index = 2
    plain = [r["_key"] for r in dash.viewer.table.widget.rows if r["has_conversation"] == ""]
    dash.viewer.table.widget.selected = plain[0]
    assert "No conversation is stored" in dash.viewer.body.value
    assert dash.viewer.copy.text == "" and plain[0] in dash.viewer.facts.value


def test_conversation_with_tool_calls_and_anthropic_blocks():
    req = {"messages": [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}, {"type": "image_url"}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C & sunny"},
    ]}
    resp = {"type": "message", "role": "assistant", "content": [
        {"type": "text", "text": "It is 18C."},
        {"type": "tool_use", "id": "tu_1", "name": "log", "input": {"ok": True}}]}
    msgs = messages(req, resp)
    assert [m.role for m in msgs] == ["user", "assistant", "tool", "assistant"]
    assert msgs[0].text == "Weather in Paris?\n[image]"
    assert msgs[1].tool_calls[0].name == "weather" and '"city": "Paris"' in msgs[1].tool_calls[0].arguments
    assert msgs[3].tool_calls[0].name == "log"
    xml = as_xml(msgs)
    assert '<tool_call name="weather" id="call_1">' in xml
    assert '<tool tool_call_id="call_1">\n18C & sunny\n</tool>' in xml
    assert xml.startswith("<user>\nWeather in Paris?") and xml.endswith("</assistant>")


def test_embeddings_request_reads_as_inputs():
    msgs = messages({"model": "e", "input": ["a", "b"]}, {"object": "list", "data": [{}, {}]})
    assert [(m.role, m.text) for m in msgs] == [("input", "a"), ("input", "b"),
                                                ("assistant", "2 embedding vector(s)")]


# -- export, refresh, empty state -------------------------------------------------------------
def _download(button) -> tuple[dict, bytes]:
    sent = []
    button.send = lambda content, buffers=None: sent.append((content, buffers))
    button._on_message(button, {"event": "download"}, [])      # the browser's click message
    content, buffers = sent[-1]
    return content, bytes(buffers[0]) if buffers else b""


def test_export_downloads_the_selection_as_csv_and_parquet(dash, lab):
    dash.controls.filters["client"].value = "globex"
    first, last = dash.state.window()
    n = int(lab.sql("SELECT count(*) n FROM requests WHERE client = 'globex' AND started_at::DATE "
                    "BETWEEN ? AND ?", [first, last])["n"][0])
    meta, data = _download(dash.csv)
    assert meta["event"] == "file" and meta["mime"] == "text/csv"
    assert meta["filename"] == f"llmlab-{first}_{last}-globex.csv"
    frame = pd.read_csv(io.BytesIO(data))
    assert len(frame) == n and set(frame["client"]) == {"globex"}
    meta, data = _download(dash.parquet)
    table = pq.read_table(io.BytesIO(data))
    assert meta["filename"].endswith(".parquet") and table.num_rows == n


def test_a_failed_export_reports_on_the_button(dash, tmp_path):
    dash.lab.store.db_path = tmp_path / "missing" / "usage.duckdb"  # the store went away
    dash.lab.store._migrated = True
    meta, _ = _download(dash.csv)
    assert meta["event"] == "error" and meta["message"]


def _record(project: str, cost: str) -> UsageRecord:
    now = datetime.now(timezone.utc)
    return UsageRecord(request_id=str(uuid.uuid4()), source="proxy", started_at=now, ended_at=now,
                       duration_ms=120.0, model="gpt-4o-mini", provider="openai", project=project,
                       status_code=200, input_tokens=10, output_tokens=5, total_tokens=15,
                       cost_usd=Decimal(cost))


def test_refresh_and_auto_refresh_show_new_calls(tmp_path):
    store = Store(tmp_path / "fresh")
    store.ensure()
    lab = llmlab.open(tmp_path / "fresh")
    dash = Dashboard(lab, query="")
    assert not dash.has_data and dash.app.center is dash.empty
    store.record(_record("new-project", "1.25"))
    store.flush()
    dash.controls.refresh.click()
    assert dash.has_data and dash.app.center is dash.tabs
    assert tile_value(dash, "spend") == "$1.25"
    assert "new-project" in [v for _, v in dash.controls.filters["project"].options]

    async def run():
        dash.auto_refresh(0.05)
        store.record(_record("new-project", "2.00"))
        store.flush()
        for _ in range(100):
            await asyncio.sleep(0.05)
            if tile_value(dash, "spend") == "$3.25":
                break
        dash.auto_refresh(0)
    asyncio.run(run())
    assert tile_value(dash, "spend") == "$3.25"
    assert dash._auto_task is None


def test_empty_state_shows_the_snippet_for_this_server(tmp_path, monkeypatch):
    monkeypatch.setenv("VOILA_REQUEST_URL",
                       "http://127.0.0.1:8899/lab%40x/voila/render/notebooks/dashboard.ipynb?token=t")
    monkeypatch.setenv("VOILA_BASE_URL", "/lab%40x/")
    dash = Dashboard(llmlab.open(tmp_path / "empty"), query="")
    assert dash.url.enabled
    assert dash.app.center is dash.empty
    assert "http://127.0.0.1:8899/lab%40x/llmlab/v1" in dash.empty.value
    snippet = first_request_snippet("http://127.0.0.1:8899/lab%40x/")
    compile(snippet, "snippet", "exec")                         # it is valid Python as shown
    assert "from openai import OpenAI" in snippet and "X-LLMLab-Project" in snippet
    assert "llmlab demo" in empty_state_html("http://h/")


# -- budgets and Claude Code ------------------------------------------------------------------
def test_sections_are_honest_about_missing_helpers(dash, lab):
    dash.tabs.selected_index = 4
    shown = " ".join(ch.value for ch in _all_html(dash.tabs.children[4]))
    for name in ("blocks", "sessions"):
        if hasattr(lab, name):
            assert f"lab.{name}()" not in shown or "failed" in shown
        else:
            assert f"lab.{name}()" in shown and "not available" in shown


def test_budgets_tab_without_budgets_says_how_to_set_one(dash):
    dash.tabs.selected_index = 3
    shown = " ".join(ch.value for ch in _all_html(dash.tabs.children[3]))
    assert "No budgets yet" in shown and "llmlab budgets set" in shown
    assert dash.banner.layout.display == "none"


def _all_html(widget):
    import ipywidgets as w
    if isinstance(widget, w.HTML):
        yield widget
    for child in getattr(widget, "children", ()):
        yield from _all_html(child)


@pytest.fixture
def budget_lab(demo_home, tmp_path, monkeypatch):
    """A copy of the demo store, so budgets set here stay out of the other tests."""
    import shutil

    shutil.copy(Store(demo_home).db_path, tmp_path / "usage.duckdb")
    pin_the_dashboard_clock(monkeypatch)
    return llmlab.open(tmp_path)


def _month_spend(lab, column: str, value: str) -> float:
    """Proxied spend this calendar month until NOW: what a monthly budget counts."""
    start = NOW.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return float(lab.sql(f"SELECT coalesce(sum(cost_usd), 0) AS s FROM requests WHERE {column} = ? "
                         "AND source = 'proxy' AND started_at >= ? AND started_at < ?",
                         [value, start, NOW])["s"][0])


def test_budgets_tab_shows_spend_against_limit_and_the_banner(budget_lab, monkeypatch):
    from llmlab.policy.registry import record_alerts
    from llmlab.proxy.alerts import Alert

    monkeypatch.delenv("VOILA_REQUEST_URL", raising=False)
    lab = budget_lab
    client = lab.sql("SELECT client FROM requests WHERE client IS NOT NULL GROUP BY client "
                     "ORDER BY sum(cost_usd) DESC LIMIT 1")["client"][0]
    # The store also holds the demo's calls after NOW (its afternoon): no budget may count them.
    assert lab.sql("SELECT count(*) AS n FROM requests WHERE started_at >= ?", [NOW])["n"][0] > 0
    atlas = _month_spend(lab, "project", "atlas")
    client_spent = _month_spend(lab, "client", client)
    assert atlas > 0 and client_spent > 0
    lab.set_budget("project", "atlas", round(atlas / 0.85, 2), "month", hard=True)  # 85% used
    lab.set_budget("client", client, round(client_spent * 100, 2), "month")          # far below
    budgets = lab.budgets()
    row = budgets.set_index("target").loc["atlas"]
    assert row["spent_usd"] == pytest.approx(atlas, abs=1e-6)
    # An alert the server would have fired at 80% of atlas's budget this month.
    a = Alert(budget_id=row["budget_id"], scope="project", target="atlas", threshold=0.8,
              spent_usd=float(row["spent_usd"]), limit_usd=float(row["limit_usd"]), period="month",
              period_start=row["period_start"].to_pydatetime(),
              period_end=row["period_end"].to_pydatetime(), hard=True, fired_at=NOW)
    record_alerts(lab.store, [{**a.as_dict(), "message": a.text()}])

    dash = Dashboard(lab, query="tab=budgets")
    cards = dash.budgets.cards.value
    assert cards.index("atlas") < cards.index(html.escape(client))   # fullest first
    assert fmt.money(atlas) in cards and "hard limit" in cards and "85%" in cards
    shown = dash.budgets.table.sorted_frame()
    assert list(shown["target"]) == ["atlas", client]
    assert list(dash.budgets.alerts.frame["alert_id"]) == [a.alert_id]
    assert dash.banner.layout.display == "block" and html.escape(a.text()) in dash.banner.value

    # Deleting the budget takes its card, row and banner line away on refresh.
    lab.delete_budget(row["budget_id"])
    dash.controls.refresh.click()
    assert "atlas" not in dash.budgets.cards.value
    assert dash.banner.layout.display == "none"


def test_banner_names_budgets_on_course_to_pass_their_limit():
    now = pd.Timestamp.now(tz="UTC")
    budgets = pd.DataFrame([
        {"budget_id": "b1", "scope": "client", "target": "acme", "period": "week",
         "limit_usd": 100.0, "spent_usd": 130.0 * 2 / 7, "projected_usd": 130.0,
         "period_start": now - pd.Timedelta(days=2), "period_end": now + pd.Timedelta(days=5)},
        {"budget_id": "b2", "scope": "project", "target": "docs", "period": "month",
         "limit_usd": 100.0, "spent_usd": 40.0 * 2 / 22, "projected_usd": 40.0,
         "period_start": now - pd.Timedelta(days=2), "period_end": now + pd.Timedelta(days=20)}])
    old = pd.DataFrame([{"alert_id": "x", "budget_id": "b2", "threshold": 1.0, "message": "old",
                         "period_start": now - pd.Timedelta(days=40), "fired_at": now - pd.Timedelta(days=35)}])
    assert current_alerts(budgets, old).empty      # last period's alert is not this period's
    lines = banner_lines(budgets, old)
    assert len(lines) == 1 and lines[0].startswith("Client acme: projected $130.00")


def test_banner_does_not_project_from_the_first_minutes_of_a_period():
    # lab.budgets() 30 s into a month with one $1.25 call: it "projects" $100,800.
    start = pd.Timestamp("2027-02-01", tz="UTC")
    month_h, elapsed_h = 28 * 24, 30 / 3600
    row = {"budget_id": "b", "scope": "client", "target": "acme", "period": "month",
           "limit_usd": 125.0, "spent_usd": 1.25, "projected_usd": 1.25 / elapsed_h * month_h,
           "period_start": start, "period_end": start + pd.Timedelta(hours=month_h)}
    no_alerts = pd.DataFrame(columns=["alert_id", "budget_id", "threshold", "message", "period_start",
                                      "fired_at"])
    assert banner_lines(pd.DataFrame([row]), no_alerts) == []
    # A tenth of the month on, the same pace is worth naming, and so is a limit already passed.
    late = {**row, "spent_usd": 13.0, "projected_usd": 130.0}
    assert banner_lines(pd.DataFrame([late]), no_alerts)[0].startswith("Client acme: projected $130.00")
    over = {**row, "spent_usd": 126.0, "projected_usd": 126.0 / elapsed_h * month_h}
    assert len(banner_lines(pd.DataFrame([over]), no_alerts)) == 1


def test_an_unreadable_store_shows_a_problem_and_recovers(dash, tmp_path):
    good = dash.lab.store.db_path
    broken = tmp_path / "broken.duckdb"
    broken.write_bytes(b"this is not a duckdb file" * 100)
    dash.lab.store.db_path = broken
    dash.controls.refresh.click()
    assert dash.problem.layout.display == "block"
    assert "Could not read the usage store" in dash.problem.value
    dash.controls.range.value = "7d"                       # the page still answers
    assert dash.problem.layout.display == "block" and dash.state.range == "7d"
    dash.lab.store.db_path = good
    dash.controls.refresh.click()
    assert dash.problem.layout.display == "none"
    assert "vs previous 7 days" in dash.kpis.tiles["spend"].value


def _claude_line(ts: datetime, mid: str, session: str, usage: dict) -> str:
    """One assistant line as Claude Code writes it to ~/.claude/projects/<project>/<session>.jsonl."""
    return json.dumps({
        "type": "assistant", "sessionId": session, "cwd": "/home/u/alpha", "version": "2.1.3",
        "isSidechain": False, "requestId": f"req-{mid}",
        "timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "message": {"id": mid, "type": "message", "role": "assistant",
                    "model": "claude-sonnet-4-5-20250929", "usage": usage,
                    "content": [{"type": "text", "text": "ok"}]}}, separators=(",", ":"))


def test_claude_code_tab_shows_the_active_block_and_sessions(tmp_path):
    from llmlab.importers.claude_code import import_claude_code

    now = datetime.now(timezone.utc)
    folder = tmp_path / "claude" / "projects" / "-home-u-alpha"
    folder.mkdir(parents=True)
    usage = {"input_tokens": 1200, "output_tokens": 300, "cache_read_input_tokens": 5000,
             "cache_creation_input_tokens": 800}
    (folder / "old-session.jsonl").write_text("\n".join([
        _claude_line(now - timedelta(days=10), "m1", "old-session", usage),
        _claude_line(now - timedelta(days=10, minutes=-5), "m2", "old-session", usage)]) + "\n")
    (folder / "live-session.jsonl").write_text("\n".join([
        _claude_line(now - timedelta(minutes=40), "m3", "live-session", usage),
        _claude_line(now - timedelta(minutes=10), "m4", "live-session", usage)]) + "\n")
    store = Store(tmp_path / "home")
    store.ensure()
    import_claude_code(store, [tmp_path / "claude"])
    lab = llmlab.open(tmp_path / "home")
    dash = Dashboard(lab, query="tab=claude-code")
    claude = dash.claude
    live = lab.sql("SELECT sum(cost_usd)::DOUBLE AS c, count(*) AS n FROM requests "
                   "WHERE source = 'claude-code' AND started_at >= ?", [now - timedelta(hours=1)])
    assert live["n"][0] == 2
    active = claude.active.value
    assert f"{fmt.money(live['c'][0])}" in active and "/h" in active and "Projected at block end" in active
    assert [r["entries"] for r in claude.blocks.widget.rows] == ["2", "2"]   # newest block first
    assert {r["session_id"] for r in claude.sessions.widget.rows} == {"live-ses", "old-sess"}
    assert claude.body.layout.display == "flex" and claude.note.value == ""
    # The old block leaves; "7d" rather than "today", which excludes the live block just after midnight.
    dash.controls.range.value = "7d"
    assert len(claude.blocks.widget.rows) == 1 and "Projected" in claude.active.value


def test_claude_code_tab_without_imported_logs_says_how(dash):
    dash.tabs.selected_index = 4
    assert "llmlab import claude-code" in dash.claude.note.value
    assert dash.claude.body.layout.display == "none"
