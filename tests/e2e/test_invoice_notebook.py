"""The invoice notebook run for real: papermill, a kernel, nbconvert and headless Chromium.

Kernel start-up is the slow part, so there are few runs and each one is asserted thoroughly.
Every total is checked against an SQL computation written here independently of llmlab.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import nbformat
import pytest

from llmlab.store import Store, UsageRecord

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "invoice.ipynb"
MONTH = "2025-10"
# October 2025 in Berlin: 1 Oct 00:00 CEST (+02) to 1 Nov 00:00 CET (+01).
START, STOP = "2025-10-01 00:00:00+02", "2025-11-01 00:00:00+01"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium (apt-get install chromium)"),
    pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs pdftotext (apt-get install poppler-utils)"),
]

CONFIG = """
[issuer]
name = "Northwind AI Consulting GmbH"
address = ["Torstraße 12", "10119 Berlin", "Germany"]
email = "billing@northwind.example"
tax_id = "DE123456789"
payment = ["IBAN DE89 3704 0044 0532 0130 00"]

[defaults]
tax_label = "VAT"
timezone = "Europe/Berlin"
number = "NW-{yyyymm}-{CLIENT}"

[clients.acme]
name = "ACME Corporation"
address = ["1 Industrial Way", "Springfield"]
reference = "PO 4711"
"""


def _call(started, client, model, cost, *, provider="openai", tokens=(1000, 200, 0, 0), **kw):
    inp, out, read, write = tokens
    return UsageRecord(
        request_id=str(uuid.uuid4()), source=kw.pop("source", "proxy"), client=client,
        started_at=datetime.fromisoformat(started).replace(tzinfo=timezone.utc), model=model,
        provider=provider, project=kw.pop("project", "atlas"), status_code=kw.pop("status", 200),
        input_tokens=inp, output_tokens=out, cache_read_tokens=read, cache_write_tokens=write,
        total_tokens=inp + out + read + write,
        cost_usd=None if cost is None else Decimal(cost), **kw)


KNOWN = [
    _call("2025-10-01T08:00:00", "acme", "gpt-4o", "0.05"),
    _call("2025-10-02T08:00:00", "acme", "gpt-4o", "0.075", tokens=(2000, 100, 1024, 0)),  # 0.125: a tie
    _call("2025-10-14T15:00:00", "acme", "claude-sonnet-4-5", "12.345678901234",
          provider="anthropic", tokens=(40000, 5000, 120000, 8000), project="support"),
    _call("2025-10-15T15:00:00", "acme", "claude-sonnet-4-5", "3.3", provider="anthropic"),
    _call("2025-10-20T09:00:00", "acme", "gpt-4o-mini", "0.000123456789"),
    _call("2025-10-21T09:00:00", "acme", "o4-mini", "0", status=429, error_type="rate_limit_error",
          tokens=(0, 0, 0, 0)),
    _call("2025-09-30T22:30:00", "acme", "gpt-4o", "1.11"),      # 1 Oct 00:30 in Berlin: in
    _call("2025-10-31T23:30:00", "acme", "gpt-4o", "100"),       # 1 Nov 00:30 in Berlin: out
    _call("2025-10-09T10:00:00", "acme", "local/llama-3.1-8b", None, provider="vllm"),
    _call("2025-10-12T10:00:00", "acme", "claude-opus-4-1", "2.675", provider="anthropic",
          source="claude-code"),
    _call("2025-10-03T10:00:00", "globex", "gpt-4o", "7.777777777777"),
    _call("2025-10-04T10:00:00", "globex", "gemini-2.5-pro", "0.5", provider="gemini"),
    _call("2025-10-05T10:00:00", None, "gpt-4o", "3"),
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    home = tmp_path_factory.mktemp("invoice-home")
    store = Store(home)
    store.journal().append_many(KNOWN)
    store.flush()
    (home / "invoicing.toml").write_text(CONFIG, encoding="utf-8")
    return store


def expected_totals(store: Store, client: str, *, fx: str, markup: str, tax: str,
                    group: str = "model, provider") -> dict[str, Decimal]:
    """The invoice's arithmetic written directly in SQL (DuckDB rounds DECIMAL half away from
    zero, which is half-up for these non-negative amounts). Rates are decimal fractions
    ("0.15"): dividing in DuckDB would turn the decimals into doubles."""
    with store.read() as con:
        row = con.execute(f"""
            WITH lines AS (
              SELECT round(sum(cost_usd) * {fx}, 2) AS cost FROM requests
              WHERE client = ? AND cost_usd IS NOT NULL
                AND started_at >= TIMESTAMPTZ '{START}' AND started_at < TIMESTAMPTZ '{STOP}'
              GROUP BY {group}),
            priced AS (SELECT cost, round(cost * {markup}, 2) AS markup FROM lines),
            net AS (SELECT sum(cost) AS subtotal, sum(markup) AS markup,
                           sum(cost + markup) AS net FROM priced)
            SELECT subtotal, markup, net, round(net * {tax}, 2) AS tax,
                   net + round(net * {tax}, 2) AS total FROM net""", [client]).fetchone()
    assert all(isinstance(v, Decimal) for v in row)  # exact, never floats
    return dict(zip(("subtotal", "markup", "net", "tax", "total"), row))


def llmlab(*args, check=True):
    done = subprocess.run([sys.executable, "-c", "from llmlab.cli import main; raise SystemExit(main())",
                           *args], capture_output=True, text=True, timeout=600)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def assert_invoice_folder(folder: Path, expected: dict[str, Decimal], *, total_text: str) -> dict:
    data = json.loads((folder / "invoice.json").read_text(encoding="utf-8"))
    totals = {k: Decimal(data["totals"][k]) for k in expected}
    assert totals == expected
    lines = data["lines"]
    assert sum(Decimal(line["cost"]) for line in lines) == totals["subtotal"]
    assert sum(Decimal(line["markup"]) for line in lines) == totals["markup"]
    assert sum(Decimal(line["amount"]) for line in lines) == totals["net"]
    assert all(Decimal(line["cost"]) + Decimal(line["markup"]) == Decimal(line["amount"])
               for line in lines)
    assert sum(Decimal(d["amount"]) for d in data["daily"]) == totals["net"]

    html = (folder / "invoice.html").read_text(encoding="utf-8")
    for code in ("build_invoice", "display_invoice", "output_dir", "jp-CodeCell", "jp-InputArea",
                 "<script", "In&nbsp;[", "highlight"):
        assert code not in html, f"{code!r} leaked into the invoice HTML"
    assert total_text in html and data["number"] in html

    text = pdf_text(folder / "invoice.pdf")
    assert total_text in text and data["number"] in text and "INVOICE" in text

    nb = nbformat.read(str(folder / "invoice.ipynb"), as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    return data


def test_all_clients_batch_through_the_cli(lab, tmp_path):
    out = tmp_path / "invoices"
    done = llmlab("invoice", "--home", str(lab.home), "--month", MONTH, "--all-clients",
                  "--markup", "15", "--tax", "19", "--currency", "EUR", "--fx-rate", "0.92",
                  "--issue-date", "2025-11-03", "--out", str(out))
    assert "note: 1 calls in 2025-10 have no client" in done.stderr
    assert "invoices 2025-10" in done.stderr  # the batch's progress bar
    assert sorted(p.name for p in (out / MONTH).iterdir()) == ["acme", "globex"]

    expected = expected_totals(lab, "acme", fx="0.92", markup="0.15", tax="0.19")
    # By hand: 17.99 at cost + 2.70 markup = 20.69 net; VAT 19% = 3.93.
    assert expected["total"] == Decimal("24.62") and expected["tax"] == Decimal("3.93")
    acme = assert_invoice_folder(out / MONTH / "acme", expected, total_text="€24.62")
    assert acme["number"] == "NW-202510-ACME" and acme["currency"] == "EUR"
    assert acme["recipient"]["name"] == "ACME Corporation"
    assert acme["issue_date"] == "2025-11-03" and acme["due_date"] == "2025-12-03"
    assert {line["key"] for line in acme["lines"]} == {
        "claude-sonnet-4-5", "claude-opus-4-1", "gpt-4o", "gpt-4o-mini", "o4-mini"}
    gpt = next(line for line in acme["lines"] if line["key"] == "gpt-4o")
    assert gpt["cost_usd_exact"] == "1.235000000000" and gpt["requests"] == 3
    assert [u["model"] for u in acme["unpriced"]] == ["local/llama-3.1-8b"]
    assert acme["totals"]["failed_requests"] == 1
    text = pdf_text(out / MONTH / "acme" / "invoice.pdf")
    assert "ACME Corporation" in text and "local/llama-3.1-8b" in text and "PO 4711" in text

    expected = expected_totals(lab, "globex", fx="0.92", markup="0.15", tax="0.19")
    assert expected["total"] == Decimal("10.42")
    globex = assert_invoice_folder(out / MONTH / "globex", expected, total_text="€10.42")
    assert globex["recipient"] == {"name": "globex"}


def test_papermill_directly_then_render(lab, tmp_path):
    out = tmp_path / "direct"
    out.mkdir()
    run = subprocess.run(
        [sys.executable, "-m", "papermill", str(NOTEBOOK), str(out / "acme-2025-10.ipynb"),
         "-r", "month", MONTH, "-p", "client", "acme", "-p", "group_by", "day",
         "-p", "markup_pct", "12.5", "-r", "include_sources", "proxy",
         "-p", "home", str(lab.home), "-r", "issue_date", "2025-11-05", "--cwd", str(out)],
        capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert (out / "invoice.json").exists()
    rendered = llmlab("invoice", "--render", str(out / "acme-2025-10.ipynb"))
    assert "NW-202510-ACME" in rendered.stdout
    assert (out / "acme-2025-10.html").exists() and (out / "acme-2025-10.pdf").exists()

    with lab.read() as con:  # proxy calls only, one line per Berlin day
        proxy_only = con.execute(
            f"SELECT count(DISTINCT timezone('Europe/Berlin', started_at)::DATE) FROM requests "
            f"WHERE client = 'acme' AND source = 'proxy' AND cost_usd IS NOT NULL "
            f"AND started_at >= TIMESTAMPTZ '{START}' AND started_at < TIMESTAMPTZ '{STOP}'"
        ).fetchone()[0]
    data = json.loads((out / "invoice.json").read_text())
    assert data["group_by"] == "day" and len(data["lines"]) == proxy_only
    assert data["lines"][0]["key"] == "2025-10-01"  # the 00:30 Berlin call
    assert data["markup_pct"] == "12.5" and data["sources"] == ["proxy"]
    with lab.read() as con:
        row = con.execute(f"""
            WITH d AS (SELECT round(sum(cost_usd), 2) AS cost FROM requests
                       WHERE client = 'acme' AND source = 'proxy' AND cost_usd IS NOT NULL
                         AND started_at >= TIMESTAMPTZ '{START}' AND started_at < TIMESTAMPTZ '{STOP}'
                       GROUP BY timezone('Europe/Berlin', started_at)::DATE)
            SELECT sum(cost + round(cost * 0.125, 2)) FROM d""").fetchone()
    # By hand: 16.89 at cost; markups 0.15 (0.145 rounds up) + 0.01 + 1.54 + 0.41 = 2.11.
    assert Decimal(data["totals"]["total"]) == row[0] == Decimal("19.00")  # no tax configured
    assert "$19.00" in pdf_text(out / "acme-2025-10.pdf")


def test_bad_month_in_a_papermill_run_says_what_to_do(lab, tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "papermill", str(NOTEBOOK), str(tmp_path / "bad.ipynb"),
         "-p", "month", "202613", "-p", "client", "acme", "-p", "home", str(lab.home)],
        capture_output=True, text=True, timeout=600)
    assert run.returncode != 0
    assert "InvoiceError" in run.stderr
    assert "month=202613 is not a month; write it as YYYY-MM" in run.stderr
    assert "-r month 2026-10" in run.stderr
    assert not (tmp_path / "invoice.json").exists()
