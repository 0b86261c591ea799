"""Invoice numbers, checks and rendering in-process (the notebook runs are in tests/e2e)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from llmlab.errors import InvoiceError
from llmlab.invoice import build_invoice, clients_with_usage, invoice_html, write_json
from llmlab.invoicing.config import load_config, parse_config
from llmlab.invoicing.money import format_money, round_money
from llmlab.store import UsageRecord

TODAY = date(2025, 12, 15)
UTC = timezone.utc


def call(started: str, *, client="acme", model="gpt-4o", provider="openai", cost="0.01",
         project="atlas", source="proxy", status=200, tokens=(100, 20, 0, 0), **extra):
    inp, out, cache_read, cache_write = tokens
    return UsageRecord(
        request_id=str(uuid.uuid4()), source=source,
        started_at=datetime.fromisoformat(started).replace(tzinfo=UTC),
        model=model, provider=provider, client=client, project=project, status_code=status,
        input_tokens=inp, output_tokens=out, cache_read_tokens=cache_read,
        cache_write_tokens=cache_write, total_tokens=inp + out + cache_read + cache_write,
        cost_usd=None if cost is None else Decimal(cost), **extra)


# October 2025 for acme, in Europe/Berlin (UTC+2 until 26 Oct, then UTC+1).
KNOWN = [
    # gpt-4o sums to exactly 0.125 USD: half-up gives 0.13 (banker's rounding would give 0.12).
    call("2025-10-02T09:00:00", cost="0.05", tokens=(1000, 200, 0, 0)),
    call("2025-10-02T10:00:00", cost="0.075", tokens=(1500, 300, 500, 0)),
    call("2025-10-03T10:00:00", cost="0", status=500, tokens=(0, 0, 0, 0),
         error_type="api_error"),
    call("2025-10-20T12:00:00", model="claude-sonnet-4-5", provider="anthropic",
         cost="1.234567890123", tokens=(5000, 800, 20000, 3000), project="support"),
    call("2025-10-21T12:00:00", model="claude-sonnet-4-5", provider="anthropic", cost="2.5",
         tokens=(7000, 900, 0, 0)),
    # 00:30 on 1 October in Berlin: October there, September in UTC.
    call("2025-09-30T22:30:00", model="claude-sonnet-4-5", provider="anthropic", cost="0.3"),
    # 00:30 on 1 November in Berlin: November there, October in UTC.
    call("2025-10-31T23:30:00", cost="7"),
    # No price: listed, never billed as 0.
    call("2025-10-05T08:00:00", model="local/llama-3.1-8b", provider="vllm", cost=None,
         tokens=(400, 100, 0, 0)),
    call("2025-10-06T08:00:00", model="local/llama-3.1-8b", provider="vllm", cost=None),
    call("2025-10-05T08:00:00", client="globex", cost="4.2"),
    call("2025-10-07T08:00:00", client=None, cost="1"),
    call("2025-10-08T08:00:00", source="claude-code", model="claude-opus-4-1",
         provider="anthropic", cost="0.995"),
]


@pytest.fixture
def known_store(store):
    store.journal().append_many(KNOWN)
    store.flush()
    return store


def invoice(**kw):
    params = dict(month="2025-10", client="acme", timezone="Europe/Berlin", today=TODAY,
                  issue_date="2025-11-03")
    params.update(kw)
    return build_invoice(**params)


def test_lines_and_totals_are_exact_and_add_up(known_store):
    inv = invoice(markup_pct=15, tax_pct=19)
    lines = {line.key: line for line in inv.lines}
    assert set(lines) == {"gpt-4o", "claude-sonnet-4-5", "claude-opus-4-1"}
    gpt = lines["gpt-4o"]
    assert (gpt.requests, gpt.failed, gpt.cost_usd) == (3, 1, Decimal("0.125"))
    assert (gpt.cost, gpt.markup, gpt.amount) == (Decimal("0.13"), Decimal("0.02"), Decimal("0.15"))
    sonnet = lines["claude-sonnet-4-5"]
    # The 1 October 00:30 Berlin call is in; the 1 November 00:30 Berlin call is out.
    assert sonnet.requests == 3 and sonnet.cost_usd == Decimal("4.034567890123")
    assert (sonnet.cost, sonnet.markup) == (Decimal("4.03"), Decimal("0.60"))
    assert sonnet.tokens.cache_read_tokens == 20000 and sonnet.tokens.cache_write_tokens == 3000
    t = inv.totals
    assert t.subtotal == sum(line.cost for line in inv.lines)
    assert t.markup == sum(line.markup for line in inv.lines)
    assert t.net == sum(line.amount for line in inv.lines) == t.subtotal + t.markup
    assert t.tax == round_money(t.net * Decimal("0.19"), "USD")
    assert t.total == t.net + t.tax
    assert (t.subtotal, t.markup, t.net, t.tax, t.total) == (
        Decimal("5.16"), Decimal("0.77"), Decimal("5.93"), Decimal("1.13"), Decimal("7.06"))
    assert all(isinstance(v, Decimal) for v in (t.subtotal, t.tax, t.total, t.cost_usd))
    # Ordered by cost, most expensive first.
    assert [line.key for line in inv.lines] == ["claude-sonnet-4-5", "claude-opus-4-1", "gpt-4o"]


def test_totals_equal_an_independent_sql_computation(known_store):
    inv = invoice(markup_pct="12.5", tax_pct=7, currency="EUR", fx_rate="0.9137")
    with known_store.read() as con:
        expected = con.execute("""
            WITH l AS (
              SELECT round(sum(cost_usd) * 0.9137, 2) AS cost FROM requests
              WHERE client = 'acme' AND cost_usd IS NOT NULL
                AND started_at >= TIMESTAMPTZ '2025-10-01 00:00:00+02'
                AND started_at <  TIMESTAMPTZ '2025-11-01 00:00:00+01'
              GROUP BY model, provider),
            m AS (SELECT cost, round(cost * 0.125, 2) AS markup FROM l)
            SELECT sum(cost), sum(markup), sum(cost + markup),
                   round(sum(cost + markup) * 0.07, 2),
                   sum(cost + markup) + round(sum(cost + markup) * 0.07, 2)
            FROM m""").fetchone()
    t = inv.totals
    assert (t.subtotal, t.markup, t.net, t.tax, t.total) == tuple(expected)
    assert inv.request.currency == "EUR" and inv.money(t.total).startswith("€")


def test_timezone_moves_the_month_boundaries(known_store):
    berlin = invoice(group_by="day")
    utc = invoice(group_by="day", timezone="UTC")
    assert berlin.lines[0].key == "2025-10-01" and "2025-10-31" not in [l.key for l in berlin.lines]
    assert utc.lines[-1].key == "2025-10-31" and "2025-10-01" not in [l.key for l in utc.lines]
    assert utc.totals.subtotal - berlin.totals.subtotal == Decimal("7") - Decimal("0.30")
    assert berlin.lines[0].description == "Wed 01 Oct 2025"
    assert [d for d, _ in berlin.daily][0] == date(2025, 10, 1) and len(berlin.daily) == 31


def test_unpriced_calls_are_listed_not_billed(known_store):
    inv = invoice()
    assert [(u.model, u.requests) for u in inv.unpriced] == [("local/llama-3.1-8b", 2)]
    assert inv.unpriced[0].tokens.total_tokens == 620
    assert "local/llama-3.1-8b" not in [line.key for line in inv.lines]
    assert any("2 calls to models without a price" in n for n in inv.notes)
    html = invoice_html(inv)
    assert "local/llama-3.1-8b" in html and "Not charged: no price" in html


def test_sources_and_projects_narrow_the_invoice(known_store):
    proxy_only = invoice(include_sources="proxy")
    assert "claude-opus-4-1" not in [line.key for line in proxy_only.lines]
    assert invoice(include_sources=["claude-code"]).totals.subtotal == Decimal("1.00")
    support = invoice(project="support")
    assert [line.requests for line in support.lines] == [1]
    by_project = invoice(group_by="project")
    assert {line.key for line in by_project.lines} == {"atlas", "support"}
    with pytest.raises(InvoiceError, match=r"unknown source\(s\) proxi.*known sources: claude-code, proxy"):
        invoice(include_sources="proxi")


def test_json_has_every_number_as_exact_text(known_store, tmp_path):
    inv = invoice(markup_pct=15, tax_pct=19)
    import json

    data = json.loads(write_json(inv, tmp_path).read_text())
    assert data["schema"] == "llmlab.invoice/1" and data["number"] == "INV-202510-ACME"
    assert data["totals"]["total"] == "7.06" and data["totals"]["tax"] == "1.13"
    assert data["period"] == {"month": "2025-10", "start": "2025-10-01", "end": "2025-10-31",
                              "timezone": "Europe/Berlin", "complete": True}
    assert sum(Decimal(line["amount"]) for line in data["lines"]) == Decimal(data["totals"]["net"])
    assert data["due_date"] == "2025-12-03" and data["draft"] is True
    assert sum(Decimal(d["amount"]) for d in data["daily"]) == Decimal(data["totals"]["net"])
    assert data["unpriced"][0]["requests"] == 2


@pytest.mark.parametrize("kw, message", [
    ({"month": "2025-13"}, r"month='2025-13' is not a month; write it as YYYY-MM.*-r month 2026-10"),
    ({"month": "Oct 2025"}, r"is not a month"),
    ({"month": 202513}, r"month=202513 is not a month"),
    ({"month": "2026-01"}, r"month 2026-01 is in the future \(today is 2025-12-15"),
    ({"markup_pct": -5}, r"markup_pct must be 0 or more, got -5"),
    ({"markup_pct": "lots"}, r"markup_pct='lots' is not a number"),
    ({"tax_pct": 120}, r"tax_pct must be between 0 and 100"),
    ({"currency": "EUR"}, r"currency EUR needs fx_rate"),
    ({"currency": "euro"}, r"not a 3-letter ISO code"),
    ({"fx_rate": "0.9"}, r"for USD it must be 1"),
    ({"group_by": "week"}, r"choose one of model, project, day"),
    ({"timezone": "Mars/Base"}, r"unknown timezone 'Mars/Base'"),
    ({"client": None}, r"say whom to bill"),
    ({"invoice_number": "INV-{nope}"}, r"template .* is malformed"),
    ({"issue_date": "3/11/2025"}, r"issue_date='3/11/2025' is not a date"),
])
def test_bad_parameters_fail_with_clear_errors(known_store, kw, message):
    with pytest.raises(InvoiceError, match=message):
        invoice(**kw)


def test_client_without_usage_lists_known_clients(known_store):
    with pytest.raises(InvoiceError) as err:
        invoice(client="acmee")
    text = str(err.value)
    assert "no usage for client 'acmee' in 2025-10 (Europe/Berlin)" in text
    assert "Clients with usage in 2025-10: acme, globex." in text
    assert "Known clients: acme, globex." in text
    with pytest.raises(InvoiceError, match=r"Clients with usage in 2025-09: acme\. Known"):
        invoice(client="globex", month="2025-09", timezone="UTC")


def test_int_month_from_papermill_p_is_understood(known_store):
    assert invoice(month=202510).request.month == "2025-10"


def test_no_month_means_the_last_full_month(known_store):
    inv = invoice(month=None)  # today is 15 December: November, which in Berlin has one call
    assert inv.request.month == "2025-11" and inv.totals.subtotal == Decimal("7.00")
    assert inv.request.period_complete


def test_clients_with_usage_counts_unattributed(known_store):
    clients, unattributed = clients_with_usage("2025-10", timezone="Europe/Berlin")
    assert clients == ["acme", "globex"] and unattributed == 1


CONFIG = """
[issuer]
name = "Northwind AI Consulting GmbH"
address = ["Torstraße 12", "10119 Berlin"]
tax_id = "DE123456789"
payment = "IBAN DE89 3704 0044 0532 0130 00\\nBIC EXAMPLEBXXX"

[defaults]
currency = "EUR"
fx_rate = 0.92
markup_pct = 15
tax_pct = 19
tax_label = "VAT"
timezone = "Europe/Berlin"
number = "NW-{year}{mm}-{CLIENT}"

[clients.acme]
name = "ACME Corporation"
address = ["1 Industrial Way", "Springfield"]
reference = "PO 4711"
markup_pct = 10
"""


def test_config_terms_and_precedence(known_store, llmlab_home):
    (llmlab_home / "invoicing.toml").write_text(CONFIG, encoding="utf-8")
    inv = invoice(timezone=None)
    r = inv.request
    assert r.fx_rate == Decimal("0.92") and r.currency == "EUR" and r.tz.key == "Europe/Berlin"
    assert r.markup_pct == Decimal("10") and r.tax_pct == Decimal("19")  # client beats defaults
    assert r.number == "NW-202510-ACME" and r.recipient.reference == "PO 4711"
    assert r.issuer.payment == ["IBAN DE89 3704 0044 0532 0130 00", "BIC EXAMPLEBXXX"]
    assert not inv.draft
    assert invoice(markup_pct=0).request.markup_pct == 0  # an explicit parameter beats both
    # A configured rate belongs to the configured currency only.
    with pytest.raises(InvoiceError, match="currency GBP needs fx_rate"):
        invoice(currency="GBP")
    html = invoice_html(inv)
    assert "ACME Corporation" in html and "Northwind AI Consulting GmbH" in html
    assert format_money(inv.totals.total, "EUR") in html and "VAT 19%" in html


def test_config_typos_are_errors(tmp_path):
    with pytest.raises(InvoiceError, match=r"\[defaults\]: unknown key\(s\) markup; known: currency"):
        parse_config({"defaults": {"markup": 15}})
    with pytest.raises(InvoiceError, match=r"\[clients.acme\]: unknown key\(s\) adress"):
        parse_config({"clients": {"acme": {"adress": ["x"]}}})
    bad = tmp_path / "bad.toml"
    bad.write_text("[issuer\nname = 1", encoding="utf-8")
    with pytest.raises(InvoiceError, match="is not valid TOML"):
        load_config(bad)
    with pytest.raises(InvoiceError, match="does not exist"):
        load_config(tmp_path / "missing.toml")


def test_rounding_is_half_up_to_the_minor_unit():
    assert round_money(Decimal("0.125"), "USD") == Decimal("0.13")
    assert round_money(Decimal("0.124999999999"), "USD") == Decimal("0.12")
    assert round_money(Decimal("2.5"), "JPY") == Decimal("3")
    assert round_money(Decimal("1.0005"), "KWD") == Decimal("1.001")
    with pytest.raises(TypeError):
        round_money(0.125, "USD")
    assert format_money(Decimal("1234.5"), "USD") == "$1,234.50"
    assert format_money(Decimal("1234"), "JPY") == "¥1,234"
    assert format_money(Decimal("12.3"), "SEK") == "SEK 12.30"


def test_draft_banner_and_static_chart(known_store):
    html = invoice_html(invoice(markup_pct=15))
    assert "DRAFT" in html and "<script" not in html
    assert "<svg" in html and "Daily usage, October 2025" in html
    assert "Markup 15%" in html


def test_missing_chromium_is_a_clear_error(monkeypatch, tmp_path):
    from llmlab.invoicing import output

    monkeypatch.setenv("LLMLAB_CHROMIUM", str(tmp_path / "no-such-browser"))
    with pytest.raises(InvoiceError, match="LLMLAB_CHROMIUM=.* is not an executable"):
        output.find_chromium()
    monkeypatch.delenv("LLMLAB_CHROMIUM")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(InvoiceError, match="no Chromium found.*apt-get install -y chromium"):
        output.find_chromium()


def test_no_store_is_a_clear_error(tmp_path):
    with pytest.raises(InvoiceError, match="no usage store at"):
        build_invoice(month="2025-10", client="acme", home=tmp_path / "empty", today=TODAY)


def test_allocation_adds_up_exactly():
    from llmlab.invoicing.compute import allocate

    parts = allocate(Decimal("10.00"), [Decimal(1), Decimal(1), Decimal(1)], "USD")
    assert parts == [Decimal("3.34"), Decimal("3.33"), Decimal("3.33")] and sum(parts) == Decimal("10")
    parts = allocate(Decimal("5.93"), [Decimal("0.125"), Decimal(0), Decimal("4.0346"), Decimal("0.995")], "USD")
    assert sum(parts) == Decimal("5.93") and parts[1] == 0
    assert allocate(Decimal("0"), [Decimal(0)] * 3, "EUR") == [Decimal("0.00")] * 3
    assert allocate(Decimal("7"), [Decimal(2), Decimal(1)], "JPY") == [Decimal(5), Decimal(2)]
