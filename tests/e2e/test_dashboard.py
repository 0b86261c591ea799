"""The dashboard in a real browser: a `jupyter server` (base_url with an escaped character) serves
notebooks/dashboard.ipynb through its Voila extension over a demo store; Debian's Chromium,
driven by Playwright, uses it like a person would. Expected numbers come from SQL run here.

Screenshots land in tests/_artifacts/; with LLMLAB_UPDATE_SCREENSHOTS=1 the README and docs
images in docs/images/ are refreshed from the same run.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from llmlab.demo import seed_demo
from llmlab.store import Store

from dashboard_server import (CHROMIUM, ROOT, chromium, jupyter_server, sign_in, wait_rendered,
                              write_claude_logs)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)"),
]
ARTIFACTS = ROOT / "tests" / "_artifacts"
DOC_IMAGES = ROOT / "docs" / "images"
# The dashboard's kernel reads the real clock, so "today", "30 days" and the budget's month must
# stay put while this test runs (a few minutes): a run that would straddle midnight UTC waits for
# it and starts just after (the expectations then hold a day with almost no calls yet).
CALENDAR_STILL_FOR_S = 240
# Offline, Voila's page asks a CDN for the Font Awesome stylesheet (icon web fonts); nothing else
# may fail.
FONT_MISSES = ("fontawesome", "font-awesome", ".woff", ".ttf", ".eot", "fonts.googleapis", "fonts.gstatic")


def sql(db: Path, query: str, params=()) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")  # days are UTC days, as on the dashboard by default
        return con.execute(query, list(params)).fetchall()
    finally:
        con.close()


def money(value) -> str:
    return f"${value:,.2f}"


def url_has(page, *parts: str) -> None:
    """Wait until the page's address holds every ``key=value`` (the kernel pushes it)."""
    from playwright.sync_api import expect

    expect(page).to_have_url(re.compile("".join(f"(?=.*[?&]{re.escape(p)}(&|$))" for p in parts)))


def shot(page, name: str, *, docs: bool = False) -> Path:
    """A full-length screenshot of the dashboard (Voila scrolls inside the page, so the window
    is grown to the dashboard's height first)."""
    height = page.evaluate("() => document.querySelector('.llmlab-dash').getBoundingClientRect().bottom")
    page.set_viewport_size({"width": 1440, "height": int(height) + 24})
    page.wait_for_timeout(400)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    if docs and os.environ.get("LLMLAB_UPDATE_SCREENSHOTS") == "1":
        DOC_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOC_IMAGES / f"{name}.png")
    page.set_viewport_size({"width": 1440, "height": 900})
    return path


def a_day_that_outlasts_the_test() -> date:
    """Today (UTC), once at least CALENDAR_STILL_FOR_S remain of it."""
    now = datetime.now(timezone.utc)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), timezone.utc)
    if (midnight - now).total_seconds() < CALENDAR_STILL_FOR_S:
        time.sleep((midnight - now).total_seconds() + 1)
    return datetime.now(timezone.utc).date()


@pytest.fixture(scope="module")
def today() -> date:
    return a_day_that_outlasts_the_test()


@pytest.fixture(scope="module")
def demo(tmp_path_factory, today):
    from llmlab.importers.claude_code import import_claude_code

    home = tmp_path_factory.mktemp("dashboard-home")
    store = Store(home)
    seed_demo(store, days=90, end=today, progress=False)
    logs = write_claude_logs(tmp_path_factory.mktemp("claude"), datetime.now(timezone.utc))
    assert import_claude_code(store, [logs]).rows_written == 4
    return home


def set_atlas_budget(home: Path) -> dict:
    """A monthly budget on project atlas, 85% spent, with the 80% alert the server fired."""
    import uuid
    from decimal import Decimal

    import llmlab
    from llmlab.policy.registry import record_alerts
    from llmlab.proxy.alerts import Alert
    from llmlab.store import UsageRecord

    lab = llmlab.open(home)
    now = datetime.now(timezone.utc)
    # A call just now: the month has spend even in its first minutes.
    lab.store.record(UsageRecord(request_id=str(uuid.uuid4()), source="proxy", started_at=now,
                                 ended_at=now, model="gpt-4o-mini", provider="openai",
                                 project="atlas", status_code=200, cost_usd=Decimal("1.25")))
    lab.flush()
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    spent = sql(home / "usage.duckdb", "SELECT sum(cost_usd) FROM requests WHERE project = 'atlas' "
                "AND source = 'proxy' AND started_at >= ? AND started_at <= ?", [month, now])[0][0]
    limit = round(float(spent) / 0.85, 2)
    b = lab.set_budget("project", "atlas", limit, "month")
    row = lab.budgets().iloc[0]
    a = Alert(budget_id=row["budget_id"], scope="project", target="atlas", threshold=0.8,
              spent_usd=float(spent), limit_usd=limit, period="month",
              period_start=row["period_start"].to_pydatetime(),
              period_end=row["period_end"].to_pydatetime(), hard=False, fired_at=now)
    record_alerts(lab.store, [{**a.as_dict(), "message": a.text()}])
    return {"budget": b, "spent": float(spent), "alert": a.text()}


def test_dashboard_in_chromium(demo, today, tmp_path):
    from playwright.sync_api import expect

    db = demo / "usage.duckdb"
    budget = set_atlas_budget(demo)
    first30 = today - timedelta(days=29)
    spend_all = sql(db, "SELECT sum(cost_usd) FROM requests WHERE started_at::DATE BETWEEN ? AND ?",
                    [first30, today])[0][0]
    spend_atlas = sql(db, "SELECT sum(cost_usd) FROM requests WHERE project = 'atlas' AND "
                          "started_at::DATE BETWEEN ? AND ?", [first30, today])[0][0]
    spend_atlas_4o = sql(db, "SELECT sum(cost_usd) FROM requests WHERE project = 'atlas' AND model = "
                             "'gpt-4o' AND started_at::DATE BETWEEN ? AND ?", [first30, today])[0][0]
    first90 = today - timedelta(days=89)
    conversation = sql(db, "SELECT request_id, request_body, response_body FROM requests WHERE "
                           "request_body IS NOT NULL AND started_at::DATE BETWEEN ? AND ? "
                           "ORDER BY started_at DESC, request_id LIMIT 1", [first90, today])[0]
    live_block = sql(db, "SELECT sum(cost_usd) FROM requests WHERE source = 'claude-code' AND "
                         "started_at >= now() - INTERVAL 1 HOUR")[0][0]
    atlas_90 = sql(db, "SELECT count(*) FROM requests WHERE project = 'atlas' AND "
                       "started_at::DATE BETWEEN ? AND ?", [first90, today])[0][0]

    with jupyter_server(demo, tmp_path) as server, chromium() as (page, console):
        failed: list[str] = []
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        sign_in(page, server)
        page.goto(server.dashboard(), timeout=120_000)
        wait_rendered(page)

        # No cell errors: Voila shows a failing cell as stderr / error output.
        assert page.locator("[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
        assert page.locator(".jp-OutputArea-output[data-mime-type*='error']").count() == 0
        assert "Traceback" not in page.inner_text("body")

        # Every section of the overview, and the numbers as people read them.
        for section in ("cost", "tokens", "share", "calendar"):
            expect(page.locator(f".llmlab-section-{section} .vega-embed svg")).to_have_count(1)
        expect(page.locator(".llmlab-kpi")).to_have_count(12)
        spend = page.locator(".llmlab-kpi[data-metric=spend] .llmlab-kpi-value")
        expect(spend).to_have_text(money(spend_all))
        expect(page.locator(".llmlab-kpi[data-metric=requests] .llmlab-kpi-value")).to_have_text(
            f"{sql(db, 'SELECT count(*) FROM requests WHERE started_at::DATE BETWEEN ? AND ?', [first30, today])[0][0]:,}")
        expect(page.locator(".llmlab-section-calendar rect, .llmlab-section-calendar path").first).to_be_attached()
        shot(page, "dashboard", docs=True)

        # The project filter changes the spend tile to what SQL says, and the URL.
        page.select_option(".llmlab-filter-project select", label="atlas")
        expect(spend).to_have_text(money(spend_atlas))
        url_has(page, "project=atlas")

        # Clicking a model in the cost chart filters the rest of the page.
        page.locator(".llmlab-section-cost path[aria-label*='model: gpt-4o;']").first.click()
        expect(page.locator(".llmlab-filter-model select")).to_have_value("gpt-4o")
        expect(spend).to_have_text(money(spend_atlas_4o))
        url_has(page, "model=gpt-4o")

        # Back goes to the view before the click; forward returns to it.
        page.go_back()
        expect(page.locator(".llmlab-filter-model select")).to_have_value("All models")
        expect(spend).to_have_text(money(spend_atlas))
        page.go_forward()
        expect(spend).to_have_text(money(spend_atlas_4o))
        page.go_back()
        expect(spend).to_have_text(money(spend_atlas))

        # Breakdown: a sortable table per grouping.
        page.click(".lm-TabBar-tab:has-text('Breakdown')")
        table = page.locator(".llmlab-section-breakdown table.llmlab-table")
        expect(table.locator("tbody tr").first).to_be_visible()
        page.click(".llmlab-section-breakdown th:has-text('Requests')")
        expect(page.locator(".llmlab-section-breakdown th.sorted")).to_contain_text("Requests")
        page.click(".llmlab-group button:has-text('Client')")
        expect(table.locator("th").first).to_have_text("Client")
        url_has(page, "tab=breakdown", "group=client")
        shot(page, "dashboard-breakdown", docs=True)

        # Requests: 90 days, conversations only, open the newest one.
        page.click(".lm-TabBar-tab:has-text('Requests')")
        page.click(".llmlab-range button:has-text('90 days')")
        expect(page.locator(".llmlab-page-position")).to_contain_text(f"of {atlas_90:,} calls")
        page.select_option(".llmlab-filter-project select", label="All projects")
        page.click(".llmlab-only-conversations")
        rows = page.locator(".llmlab-section-requests tbody tr")
        expect(rows.first).to_have_attribute("data-key", conversation[0])
        rows.first.click()
        request, response = json.loads(conversation[1]), json.loads(conversation[2])
        question = request["messages"][-1]["content"]
        answer = response["choices"][0]["message"]["content"]
        body = page.locator(".llmlab-conversation")
        expect(body.locator(".role-user")).to_contain_text(question)
        expect(body.locator(".role-assistant")).to_contain_text(answer)
        shot(page, "dashboard-requests", docs=True)
        page.click(".llmlab-copy")
        expect(page.locator(".llmlab-copy")).to_have_text("Copied ✓")
        clipboard = page.evaluate("() => navigator.clipboard.readText()")
        assert clipboard.startswith("<system>\n") and f"<user>\n{question}\n</user>" in clipboard
        assert clipboard.endswith(f"<assistant>\n{answer}\n</assistant>")
        page.click(".llmlab-view-mode button:has-text('Raw JSON')")
        expect(body.locator("pre.llmlab-json")).to_contain_text(conversation[0])

        # Export the selection (all projects, 90 days) as CSV.
        with page.expect_download() as download:
            page.click(".llmlab-download:has-text('CSV')")
        exported = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
        total_90 = sql(db, "SELECT count(*) FROM requests WHERE started_at::DATE BETWEEN ? AND ?",
                       [first90, today])[0][0]
        assert len(exported) == total_90
        assert download.value.suggested_filename == f"llmlab-{first90}_{today}.csv"

        # Budgets: atlas's card with its month-to-date spend, and the alert as the page banner.
        page.click(".lm-TabBar-tab:has-text('Budgets')")
        budgets = page.locator(".llmlab-section-budgets")
        expect(budgets.locator(".llmlab-budget")).to_have_count(1)
        expect(budgets.locator(".llmlab-budget")).to_contain_text("atlas")
        expect(budgets.locator(".llmlab-budget")).to_contain_text(money(budget["spent"]))
        expect(budgets.locator(".llmlab-meter-warn")).to_have_count(1)
        expect(page.locator(".llmlab-banner")).to_contain_text(budget["alert"])
        shot(page, "dashboard-budgets", docs=True)
        page.click(".lm-TabBar-tab:has-text('Claude Code')")
        claude = page.locator(".llmlab-section-claude-code")
        expect(claude.locator(".llmlab-kpi[data-metric='Spent so far'] .llmlab-kpi-value")).to_have_text(
            money(live_block))
        expect(claude.locator(".llmlab-kpi[data-metric='Burn rate'] .llmlab-kpi-value")).to_contain_text("/h")
        expect(claude.locator("table.llmlab-table").first.locator("tbody tr")).to_have_count(2)
        expect(claude.locator("table.llmlab-table").nth(1).locator("tbody tr")).to_have_count(2)
        shot(page, "dashboard-claude-code", docs=True)

        # A reload (or a shared link) lands on the same view.
        page.click(".lm-TabBar-tab:has-text('Requests')")
        url_has(page, "tab=requests", "range=90d")
        page.reload(timeout=120_000)
        expect(page.locator(".llmlab-section-requests tbody tr").first).to_be_visible(timeout=120_000)
        expect(page.locator(".lm-TabBar-tab.lm-mod-current")).to_have_text("Requests")
        expect(page.locator(".llmlab-range button.mod-active")).to_have_text("90 days")

    errors = [(kind, text, where) for kind, text, where in console
              if kind in ("error", "pageerror") and not any(f in where for f in FONT_MISSES)]
    assert errors == [], errors
    # Leaving the page, Voila's unload beacon shuts its kernel down; the browser reports the
    # beacon as aborted, so check the server got it instead.
    beacons = [u for u in failed if "/voila/api/shutdown/" in u]
    log = server.log.read_text()
    assert all(f"Kernel shutdown: {u.rsplit('/', 1)[1]}" in log for u in beacons)
    assert [u for u in failed if u not in beacons and not any(f in u for f in FONT_MISSES)] == []
