"""The Budgets tab: each budget's spend against its limit in the current period, its burn rate,
the projected end-of-period spend, and the alerts fired this period (also the page's banner).

Everything comes from ``lab.budgets()`` and ``lab.alerts()`` (llmlab/policy/report.py); budgets
are global, so this tab does not follow the page's date range or filters (it says so).
"""

from __future__ import annotations

import html

import ipywidgets as w
import pandas as pd

from . import format as fmt
from .tables import Column, FrameTable

SCOPE_LABEL = {"project": "Project", "client": "Client", "key": "Key"}
# A projection from the first minutes of a period is noise: one call at 00:05 "projects" 288
# times its cost over the day. The banner names a projected overrun once this share of the
# period has passed (a budget already past its limit is named at once).
PROJECT_AFTER_SHARE = 0.1
_HOW_TO = """<div class="llmlab-hint"><b>No budgets yet.</b> Set one for a project, a client or a
virtual key; the proxy then counts every call against it, alerts at 80% and 100%, and with
<code>--hard</code> refuses calls past the limit:
<pre>llmlab budgets set --project atlas --limit 200 --period month
llmlab budgets set --client acme --limit 50 --period week --hard</pre>
or from Python: <code>lab.set_budget("project", "atlas", 200, "month")</code>.
See docs/users/budgets.md.</div>"""


def _when(ts) -> str:
    if ts is None or pd.isna(ts):
        return "—"
    return f"{pd.Timestamp(ts).tz_convert('UTC'):%Y-%m-%d %H:%M} UTC"


def _ratio(x) -> str:
    return "—" if x is None or pd.isna(x) else f"{float(x):.0%}"


def _meter(used: float, thresholds: list[float], projected: float | None) -> str:
    """A bar of spend against the limit, tick marks at the alert thresholds, a projection mark."""
    fill = max(0.0, min(used, 1.0)) * 100
    level = "over" if used >= 1 else "warn" if thresholds and used >= min(thresholds) else "ok"
    ticks = "".join(f'<span class="llmlab-meter-tick" style="left:{min(t, 1.0) * 100:.1f}%" '
                    f'title="alert at {t:.0%}"></span>' for t in thresholds if t <= 1.0)
    proj = ""
    if projected is not None and not pd.isna(projected) and projected > used:
        proj = (f'<span class="llmlab-meter-proj" style="left:{min(projected, 1.0) * 100:.1f}%" '
                f'title="projected {projected:.0%} at the end of the period"></span>')
    return (f'<div class="llmlab-meter llmlab-meter-{level}"><div class="llmlab-meter-fill" '
            f'style="width:{fill:.1f}%"></div>{ticks}{proj}</div>')


def budget_card(b: dict) -> str:
    limit = b["limit_usd"]
    projected_ratio = b["projected_usd"] / limit if limit else None
    kind = "hard limit" if b["hard"] else "soft limit"
    exhausts = ("" if b["exhausts_at"] is None or pd.isna(b["exhausts_at"])
                else f' · runs out {html.escape(_when(b["exhausts_at"]))}')
    over = b["spent_usd"] >= limit
    return (
        f'<div class="llmlab-budget{" llmlab-budget-over" if over else ""}">'
        f'<div class="llmlab-card-sub">{SCOPE_LABEL.get(b["scope"], b["scope"])} · '
        f'{html.escape(str(b["period"]))} · {kind}</div>'
        f'<div class="llmlab-budget-target">{html.escape(str(b["target"]))}</div>'
        f'<div class="llmlab-budget-amount"><b>{fmt.money(b["spent_usd"])}</b> of '
        f'{fmt.money(limit)} <span>({_ratio(b["used_pct"])})</span></div>'
        f'{_meter(b["used_pct"], list(b["thresholds"] or []), projected_ratio)}'
        f'<div class="llmlab-card-sub">burn {fmt.money(b["burn_rate_usd_per_hour"])}/h · projected '
        f'{fmt.money(b["projected_usd"])} ({_ratio(projected_ratio)}){exhausts}</div>'
        f'<div class="llmlab-card-sub">resets {html.escape(_when(b["period_end"]))}</div></div>')


BUDGET_COLUMNS = [
    Column("target", "Budget", str, "text"),
    Column("scope", "Scope", lambda v: SCOPE_LABEL.get(v, str(v)), "text"),
    Column("period", "Period", str, "text"),
    Column("spent_usd", "Spent", fmt.money),
    Column("limit_usd", "Limit", fmt.money),
    Column("used_pct", "Used", _ratio),
    Column("remaining_usd", "Remaining", fmt.money),
    Column("burn_rate_usd_per_hour", "Burn / hour", fmt.money),
    Column("projected_usd", "Projected", fmt.money),
    Column("exhausts_at", "Runs out", _when, "text"),
    Column("period_end", "Resets", _when, "text"),
    Column("hard", "Hard", lambda v: "yes" if v else "", "text"),
]
ALERT_COLUMNS = [
    Column("fired_at", "When", _when, "text"),
    Column("target", "Budget", str, "text"),
    Column("threshold", "Threshold", _ratio),
    Column("spent_usd", "Spent", fmt.money),
    Column("limit_usd", "Limit", fmt.money),
    Column("message", "Message", str, "text"),
]


def current_alerts(budgets: pd.DataFrame, alerts: pd.DataFrame) -> pd.DataFrame:
    """Alerts fired in each budget's current period, newest first."""
    if budgets.empty or alerts.empty:
        return alerts.iloc[0:0]
    current = budgets[["budget_id", "period_start"]].rename(columns={"period_start": "current"})
    merged = alerts.merge(current, on="budget_id")
    return merged[merged["period_start"] == merged["current"]].drop(columns="current") \
        .sort_values("fired_at", ascending=False, kind="stable")


def banner_lines(budgets: pd.DataFrame, alerts: pd.DataFrame) -> list[str]:
    """For the page banner: the highest alert of each budget this period, then the budgets on
    course to pass their limit that have not alerted yet."""
    lines, seen = [], set()
    for a in current_alerts(budgets, alerts).sort_values("threshold", ascending=False,
                                                          kind="stable").to_dict("records"):
        if a["budget_id"] not in seen:
            seen.add(a["budget_id"])
            lines.append(str(a["message"]))
    for b in budgets.to_dict("records"):
        if b["budget_id"] not in seen and b["limit_usd"] and b["projected_usd"] > b["limit_usd"] \
                and _worth_projecting(b):
            lines.append(f'{SCOPE_LABEL.get(b["scope"], b["scope"])} {b["target"]}: projected '
                         f'{fmt.money(b["projected_usd"])} by {_when(b["period_end"])}, over its '
                         f'{fmt.money(b["limit_usd"])} {b["period"]} limit')
    return lines


def _worth_projecting(b: dict) -> bool:
    # projected = spent / elapsed * length, so spent / projected is the share of the period gone.
    return b["spent_usd"] >= b["limit_usd"] or b["spent_usd"] >= PROJECT_AFTER_SHARE * b["projected_usd"]


class BudgetsTab:
    def __init__(self):
        self.cards = w.HTML()
        self.note = w.HTML()
        self.table = FrameTable(BUDGET_COLUMNS, key_column="budget_id", sort_by="used_pct")
        self.table.widget.descending = True
        self.alerts = FrameTable(ALERT_COLUMNS, key_column="alert_id", sort_by="fired_at",
                                 empty_text="No alert has fired in the current periods.")
        self.alerts.widget.descending = True
        self.details = w.VBox([
            w.HTML('<div class="llmlab-section-title">All budgets</div>'), self.table.widget,
            w.HTML('<div class="llmlab-section-title">Alerts this period</div>'), self.alerts.widget])
        self.widget = w.VBox([
            w.HTML('<div class="llmlab-section-title">Budgets: spend against limit, burn rate and '
                   'projection</div><div class="llmlab-card-sub">Each budget\'s current period, '
                   'whatever the page\'s dates and filters. Burn rate: spend so far per hour of '
                   'the period; projection: that rate until the period ends.</div>'),
            self.note, self.cards, self.details])

    def refresh(self, lab) -> list[str]:
        """Redraw from ``lab``; return the banner's lines."""
        budgets = lab.budgets()
        if budgets.empty:
            self.note.value = _HOW_TO
            self.cards.value = ""
            self.details.layout.display = "none"
            return []
        alerts = lab.alerts()
        self.note.value = ""
        self.details.layout.display = "flex"
        ordered = budgets.sort_values("used_pct", ascending=False, kind="stable")
        self.cards.value = ('<div class="llmlab-budgets">'
                            + "".join(budget_card(b) for b in ordered.to_dict("records")) + "</div>")
        self.table.show(budgets)
        self.alerts.show(current_alerts(budgets, alerts))
        return banner_lines(budgets, alerts)
