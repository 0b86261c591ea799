"""An invoice as a self-contained HTML fragment (inline CSS, a static SVG chart, no JavaScript).

The same fragment is what the notebook displays, what nbconvert writes to invoice.html and what
Chromium prints to invoice.pdf, so the three never disagree. Its CSS is scoped under
``.llmlab-invoice`` so it does not restyle JupyterLab around it.
"""

from __future__ import annotations

import functools
from datetime import date
from pathlib import Path

from markupsafe import Markup

from .compute import Invoice
from .money import format_int, format_money, format_pct, format_plain, minor_units

TEMPLATES = Path(__file__).parent / "templates"
ACCENT = "#1d3557"


@functools.lru_cache(maxsize=1)
def _environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["int"] = format_int
    env.filters["pct"] = format_pct
    env.filters["day"] = long_date
    return env


def long_date(d: date) -> str:
    """``1 October 2026`` (no leading zero, month spelled out: unambiguous everywhere)."""
    return f"{d.day} {d:%B %Y}"


def period_label(start: date, end: date) -> str:
    return f"{start.day}\u2013{end.day} {end:%B %Y}"


def usage_chart_svg(invoice: Invoice) -> str:
    """The net amount split by day, as a static SVG rendered offline by vl-convert."""
    import vl_convert

    r = invoice.request
    places = minor_units(r.currency)
    values = [{"day": str(d.day), "weekend": d.weekday() >= 5,
               "amount": float(amount),  # display only: the money itself stays Decimal
               "label": format_money(amount, r.currency), "date": long_date(d)}
              for d, amount in invoice.daily]
    spec = {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "width": 660, "height": 105, "background": "white",
        "data": {"values": values},
        "mark": {"type": "bar", "cornerRadiusTopLeft": 1.5, "cornerRadiusTopRight": 1.5},
        "encoding": {
            "x": {"field": "day", "type": "ordinal", "sort": None, "title": None,
                  "axis": {"labelAngle": 0, "labelFontSize": 8, "ticks": False,
                           "domainColor": "#9ca3af", "labelColor": "#6b7280"}},
            "y": {"field": "amount", "type": "quantitative", "title": None,
                  "axis": {"format": f",.{places}f", "labelFontSize": 8, "tickCount": 4,
                           "labelColor": "#6b7280", "gridColor": "#eef0f3", "domain": False,
                           "ticks": False}},
            "color": {"condition": {"test": "datum.weekend", "value": "#a8b6c8"},
                      "value": ACCENT},
        },
        "config": {"font": "Liberation Sans, Helvetica, Arial, DejaVu Sans, sans-serif",
                   "view": {"stroke": None}},
    }
    svg = vl_convert.vegalite_to_svg(spec)
    # Scale with the page instead of the fixed pixel size vega writes.
    return svg.replace('width="', 'data-width="', 1).replace('height="', 'data-height="', 1).replace(
        "<svg ", '<svg style="width:100%;height:auto" preserveAspectRatio="xMinYMin meet" ', 1)


def invoice_html(invoice: Invoice, *, chart: bool = True) -> str:
    """The invoice as an HTML fragment (a ``<div class="llmlab-invoice">`` with its style)."""
    r = invoice.request
    money = functools.partial(format_money, currency=r.currency)
    plain = functools.partial(format_plain, currency=r.currency)
    return _environment().get_template("invoice.html.j2").render(
        inv=invoice, r=r, t=invoice.totals, money=money, plain=plain,
        period=period_label(r.start, r.end),
        show_markup=r.markup_pct > 0, show_tax=r.tax_pct > 0,
        chart=Markup(usage_chart_svg(invoice)) if chart and invoice.lines else None,
        accent=ACCENT, minor=minor_units(r.currency),
    )


def display_invoice(invoice: Invoice) -> None:
    """Show the invoice in the notebook (the output nbconvert turns into invoice.html)."""
    from IPython.display import HTML, display

    display(HTML(invoice_html(invoice)),
            metadata={"llmlab_invoice": {"number": invoice.request.number,
                                         "total": str(invoice.totals.total),
                                         "currency": invoice.request.currency}})
