"""The dashboard's stylesheet. Every rule is scoped under ``.llmlab-dash`` so a dashboard shown
inside JupyterLab leaves the rest of the page alone."""

from __future__ import annotations

import ipywidgets as w

CSS = """
.llmlab-dash { background: #f6f8fa; padding: 18px 22px 28px; border-radius: 10px;
  color: #24292f; font-family: system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif;
  box-sizing: border-box; }
.llmlab-dash .widget-html-content { line-height: 1.4; }
.llmlab-dash code, .llmlab-dash pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.llmlab-dash .llmlab-title { font-size: 21px; font-weight: 650; letter-spacing: -0.01em; }
.llmlab-dash .llmlab-title span { color: #57606a; font-weight: 400; font-size: 14px; margin-left: 10px; }
.llmlab-dash .llmlab-status { color: #57606a; font-size: 12.5px; text-align: right; }
.llmlab-dash .llmlab-status b { color: #24292f; font-weight: 600; }
.llmlab-dash .llmlab-muted { color: #57606a; font-size: 12.5px; }
.llmlab-dash .llmlab-toolbar { gap: 8px; align-items: center; flex-wrap: wrap; }
.llmlab-dash .llmlab-filters { gap: 8px; align-items: center; flex-wrap: wrap; margin: 4px 0 2px; }
.llmlab-dash .widget-toggle-buttons .widget-toggle-button { border-radius: 0; margin: 0;
  border: 1px solid #d0d7de; border-left-width: 0; background: #fff; color: #24292f; box-shadow: none;
  font-size: 13px; padding: 0 12px; }
.llmlab-dash .widget-toggle-buttons .widget-toggle-button:first-child { border-left-width: 1px;
  border-radius: 6px 0 0 6px; }
.llmlab-dash .widget-toggle-buttons .widget-toggle-button:last-child { border-radius: 0 6px 6px 0; }
.llmlab-dash .widget-toggle-buttons .widget-toggle-button.mod-active { background: #0969da;
  border-color: #0969da; color: #fff; }
.llmlab-dash .widget-toggle-button.mod-active { background: #ddf4ff; border-color: #54aeff; color: #0969da;
  box-shadow: none; }
.llmlab-dash .widget-button, .llmlab-dash .widget-toggle-button, .llmlab-dash .llmlab-button { border: 1px solid #d0d7de; border-radius: 6px;
  background: #fff; color: #24292f; font-size: 13px; box-shadow: none; height: 28px; padding: 0 12px;
  cursor: pointer; }
.llmlab-dash .llmlab-button:disabled { opacity: .5; cursor: default; }
.llmlab-dash .widget-button:hover, .llmlab-dash .llmlab-button:hover:enabled { background: #f3f4f6; }
.llmlab-dash .widget-dropdown select, .llmlab-dash .widget-combobox input, .llmlab-dash .widget-datepicker input {
  border: 1px solid #d0d7de; border-radius: 6px; background-color: #fff; font-size: 13px; height: 28px; }
.llmlab-dash .llmlab-filter.active select { border-color: #0969da; background-color: #ddf4ff; }
.llmlab-dash .llmlab-banner { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 8px;
  padding: 8px 14px; color: #4d2d00; font-size: 13px; }
.llmlab-dash .llmlab-banner b { font-weight: 600; }
.llmlab-dash .llmlab-budgets { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr));
  gap: 12px; margin: 4px 0 6px; }
.llmlab-dash .llmlab-budget { background: #fff; border: 1px solid #d0d7de; border-radius: 10px; padding: 10px 14px 12px; }
.llmlab-dash .llmlab-budget-over { border-color: #ff8182; }
.llmlab-dash .llmlab-budget-target { font-size: 15px; font-weight: 600; margin: 2px 0 4px; overflow-wrap: anywhere; }
.llmlab-dash .llmlab-budget-amount { font-size: 13px; color: #24292f; }
.llmlab-dash .llmlab-budget-amount span { color: #57606a; }
.llmlab-dash .llmlab-meter { position: relative; height: 10px; background: #eaeef2; border-radius: 5px; margin: 8px 0 6px; }
.llmlab-dash .llmlab-meter-fill { height: 100%; border-radius: 5px; background: #2da44e; }
.llmlab-dash .llmlab-meter-warn .llmlab-meter-fill { background: #d4a72c; }
.llmlab-dash .llmlab-meter-over .llmlab-meter-fill { background: #cf222e; }
.llmlab-dash .llmlab-meter-tick { position: absolute; top: -2px; width: 2px; height: 14px; background: #57606a; }
.llmlab-dash .llmlab-meter-proj { position: absolute; top: -3px; width: 0; height: 0; margin-left: -5px;
  border-left: 5px solid transparent; border-right: 5px solid transparent; border-top: 6px solid #24292f; }
.llmlab-dash .llmlab-problem { background: #ffebe9; border: 1px solid #ff8182; border-radius: 8px;
  padding: 8px 14px; color: #82071e; font-size: 13px; overflow-wrap: anywhere; }
.llmlab-dash .llmlab-problem span { color: #57606a; }
.llmlab-dash .widget-tab > .p-TabBar, .llmlab-dash .widget-tab > .lm-TabBar { border-bottom: 1px solid #d0d7de; }
.llmlab-dash .widget-tab > .lm-TabBar .lm-TabBar-tab { background: transparent; border: none;
  font-size: 14px; color: #57606a; padding: 6px 16px; min-width: 0; flex: 0 0 auto; }
.llmlab-dash .widget-tab > .lm-TabBar .lm-TabBar-tab.lm-mod-current { color: #24292f; font-weight: 600;
  border-bottom: 2px solid #fd8c73; transform: none; }
.llmlab-dash .widget-tab > .lm-TabBar .lm-TabBar-tab.lm-mod-current:before { display: none; }
.llmlab-dash .widget-tab > .widget-tab-contents { border: none; padding: 16px 0 0; background: transparent;
  overflow: visible; }
.llmlab-dash .llmlab-card { background: #fff; border: 1px solid #d0d7de; border-radius: 10px;
  padding: 12px 16px 14px; box-sizing: border-box; overflow-x: auto; }
.llmlab-dash .llmlab-card-title { font-size: 14px; font-weight: 600; }
.llmlab-dash .llmlab-card-sub { color: #57606a; font-size: 12px; }
.llmlab-dash .llmlab-kpi { background: #fff; border: 1px solid #d0d7de; border-radius: 10px;
  padding: 10px 14px 9px; height: 100%; box-sizing: border-box; }
.llmlab-dash .llmlab-kpi-cell { margin: 0; }
.llmlab-dash .llmlab-kpi-label { font-size: 12px; color: #57606a; white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis; }
.llmlab-dash .llmlab-kpi-value { font-size: 24px; font-weight: 650; margin: 2px 0 1px;
  font-variant-numeric: tabular-nums; letter-spacing: -0.01em; white-space: nowrap; }
.llmlab-dash .llmlab-kpi-delta { font-size: 12px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.llmlab-dash .llmlab-kpi-delta span { color: #8c959f; }
.llmlab-dash .llmlab-kpi-delta.good { color: #1a7f37; }
.llmlab-dash .llmlab-kpi-delta.bad { color: #cf222e; }
.llmlab-dash .llmlab-kpi-delta.neutral { color: #57606a; }
.llmlab-dash .llmlab-kpi-note { font-size: 11.5px; color: #8c959f; white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis; min-height: 15px; }
.llmlab-dash .llmlab-table-wrap { overflow-x: auto; }
.llmlab-dash table.llmlab-table { border-collapse: collapse; width: 100%; font-size: 13px;
  font-variant-numeric: tabular-nums; }
.llmlab-dash table.llmlab-table th { font-weight: 600; color: #57606a; font-size: 12px; text-align: right;
  padding: 7px 10px; border-bottom: 1px solid #d0d7de; white-space: nowrap; user-select: none; }
.llmlab-dash table.llmlab-table th.sortable { cursor: pointer; }
.llmlab-dash table.llmlab-table th.sortable:hover, .llmlab-dash table.llmlab-table th.sorted { color: #0969da; }
.llmlab-dash table.llmlab-table td { padding: 6px 10px; border-bottom: 1px solid #eaeef2; text-align: right;
  white-space: nowrap; }
.llmlab-dash table.llmlab-table .text { text-align: left; }
.llmlab-dash table.llmlab-table td.text { max-width: 280px; overflow: hidden; text-overflow: ellipsis; }
.llmlab-dash table.llmlab-table tbody tr:nth-child(even) { background: #fafbfc; }
.llmlab-dash table.llmlab-table.clickable tbody tr { cursor: pointer; }
.llmlab-dash table.llmlab-table.clickable tbody tr:hover { background: #eef5ff; }
.llmlab-dash table.llmlab-table tbody tr.selected { background: #ddf4ff; box-shadow: inset 3px 0 0 #0969da; }
.llmlab-dash .llmlab-table-empty, .llmlab-dash .llmlab-hint { color: #57606a; font-size: 13px; padding: 10px 2px; }
.llmlab-dash .llmlab-unavailable { background: #fff; border: 1px dashed #d0d7de; border-radius: 8px;
  padding: 14px 16px; color: #57606a; font-size: 13px; }
.llmlab-dash .llmlab-unavailable b { color: #24292f; }
.llmlab-dash .llmlab-active-tiles { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px;
  margin-bottom: 6px; }
.llmlab-dash .llmlab-section-title { font-size: 14px; font-weight: 600; margin: 14px 0 8px; }
.llmlab-dash .llmlab-detail { border-top: 1px solid #d0d7de; margin-top: 12px; padding-top: 12px; gap: 8px; }
.llmlab-dash dl.llmlab-facts { display: grid; grid-template-columns: 110px 1fr; gap: 3px 12px;
  margin: 0 0 6px; font-size: 13px; }
.llmlab-dash dl.llmlab-facts dt { color: #57606a; }
.llmlab-dash dl.llmlab-facts dd { margin: 0; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
.llmlab-dash .llmlab-conversation { margin-top: 6px; }
.llmlab-dash .llmlab-msg { border: 1px solid #d0d7de; border-radius: 8px; padding: 8px 12px;
  margin: 0 0 8px; background: #fff; max-width: 900px; }
.llmlab-dash .llmlab-msg.role-user { background: #f6f8fa; }
.llmlab-dash .llmlab-msg.role-assistant { background: #f0f7ff; border-color: #b6d5f7; }
.llmlab-dash .llmlab-msg.role-system { background: #fffbeb; border-color: #f0d98c; }
.llmlab-dash .llmlab-msg.role-tool { background: #f5f0ff; border-color: #d8c8f5; }
.llmlab-dash .llmlab-msg-role { font-size: 11px; text-transform: uppercase; letter-spacing: .06em;
  color: #57606a; font-weight: 600; margin-bottom: 3px; }
.llmlab-dash .llmlab-msg-text { white-space: pre-wrap; font-size: 13.5px; overflow-wrap: anywhere; }
.llmlab-dash .llmlab-tool-call { margin-top: 6px; }
.llmlab-dash .llmlab-tool-name { font-size: 12px; color: #8250df; font-weight: 600; }
.llmlab-dash .llmlab-tool-call pre, .llmlab-dash pre.llmlab-json { background: #f6f8fa; border: 1px solid #eaeef2;
  border-radius: 6px; padding: 8px 10px; font-size: 12px; white-space: pre-wrap; overflow-wrap: anywhere;
  margin: 4px 0 0; max-height: 520px; overflow: auto; }
.llmlab-dash .llmlab-empty { background: #fff; border: 1px solid #d0d7de; border-radius: 10px;
  padding: 28px 32px; max-width: 860px; margin: 24px auto; }
.llmlab-dash .llmlab-empty h2 { margin: 0 0 6px; font-size: 20px; }
.llmlab-dash .llmlab-empty p { color: #57606a; font-size: 14px; }
.llmlab-dash .llmlab-empty pre { background: #0d1117; color: #e6edf3; border-radius: 8px; padding: 14px 16px;
  font-size: 13px; overflow-x: auto; }
.llmlab-dash .llmlab-chart { overflow: visible; }
.llmlab-dash .vega-embed { padding-right: 0 !important; }
.llmlab-dash .jupyter-widgets.widget-gridbox { overflow: visible; }
"""


def stylesheet() -> w.HTML:
    """An invisible widget that carries the stylesheet into the page."""
    sheet = w.HTML(f"<style>{CSS}</style>", layout=w.Layout(display="none"))
    sheet.add_class("llmlab-style")
    return sheet
