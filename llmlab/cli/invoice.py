"""``llmlab invoice``: a client's monthly invoice (notebook, HTML, PDF, invoice.json)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import add_home, store_of

EPILOG = """\
examples:
  llmlab invoice --month 2026-10 --client acme --markup 15
  llmlab invoice --month 2026-10 --client acme --currency EUR --fx-rate 0.92 --tax 19
  llmlab invoice --month 2026-10 --all-clients --out invoices/
  llmlab invoice --render out/invoice.ipynb      # HTML + PDF for a papermill-run notebook

Files go to OUT/YYYY-MM/CLIENT/: invoice.ipynb, invoice.html, invoice.pdf, invoice.json.
Terms not given here come from the invoicing config ($LLMLAB_HOME/invoicing.toml).
Docs: docs/users/invoices.md"""


def register(sub) -> None:
    p = sub.add_parser(
        "invoice", help="render a client's monthly invoice as HTML, PDF and invoice.json",
        description="Run the invoice notebook (papermill) for one client's month of usage, or for "
                    "every client with --all-clients, and write the executed notebook, HTML "
                    "without code, a PDF (headless Chromium) and invoice.json. Money is exact: "
                    "each line is rounded half-up to the cent and the lines add up.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_home(p)
    who = p.add_argument_group("what to bill")
    who.add_argument("--month", help="billing month, YYYY-MM (required unless --render)")
    target = who.add_mutually_exclusive_group()
    target.add_argument("--client", help="client to bill (the calls' client attribution)")
    target.add_argument("--all-clients", action="store_true",
                        help="one invoice for every client with usage in the month")
    who.add_argument("--project", help="bill one project (alone, or within --client)")
    who.add_argument("--source", action="append", metavar="SOURCE", dest="include_sources",
                     help="only usage from this source: proxy, claude-code (repeatable; "
                          "default every source)")
    terms = p.add_argument_group("terms (default: the invoicing config, else the value shown)")
    terms.add_argument("--markup", dest="markup_pct", metavar="PCT",
                       help="markup in percent on top of cost (default 0)")
    terms.add_argument("--tax", dest="tax_pct", metavar="PCT", help="tax in percent (default 0)")
    terms.add_argument("--currency", help="ISO currency code (default USD)")
    terms.add_argument("--fx-rate", dest="fx_rate", metavar="RATE",
                       help="currency units per 1 USD; required for a currency other than USD")
    terms.add_argument("--number", dest="invoice_number",
                       help="invoice number (default from the config template, "
                            "else INV-{yyyymm}-{CLIENT})")
    terms.add_argument("--due-days", dest="due_days", type=int, metavar="DAYS",
                       help="days from issue date to due date (default 30)")
    terms.add_argument("--group-by", dest="group_by", choices=["model", "project", "day"],
                       help="one line item per model, project or day (default model)")
    terms.add_argument("--timezone", "--tz", dest="timezone",
                       help="billing timezone for month boundaries, e.g. Europe/Berlin (default UTC)")
    terms.add_argument("--issue-date", dest="issue_date", metavar="YYYY-MM-DD",
                       help="issue date (default today in the billing timezone)")
    out = p.add_argument_group("output")
    out.add_argument("--config", help="invoicing config file (default $LLMLAB_HOME/invoicing.toml)")
    out.add_argument("--out", default="invoices", type=Path,
                     help="output folder; files go to OUT/YYYY-MM/CLIENT/ (default ./invoices)")
    out.add_argument("--no-pdf", dest="pdf", action="store_false",
                     help="skip the PDF (no Chromium needed)")
    out.add_argument("--notebook", type=Path, help="use another invoice notebook (a customised copy)")
    out.add_argument("--render", type=Path, metavar="NOTEBOOK",
                     help="only make HTML and PDF from a notebook already run by papermill")
    out.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


_TERMS = ("project", "markup_pct", "tax_pct", "currency", "fx_rate", "invoice_number", "due_days",
          "group_by", "timezone", "include_sources")


def run(args) -> int:
    from ..errors import InvoiceError
    from ..invoice import make_all_invoices, make_invoice, render_notebook

    if args.render:
        files = render_notebook(args.render, pdf=args.pdf)
        _report(files)
        return 0
    if not args.month:
        raise InvoiceError("--month is required, e.g. --month 2026-10")
    if not args.client and not args.all_clients and not args.project:
        raise InvoiceError("say whom to bill: --client NAME, --project NAME or --all-clients")
    store = store_of(args)
    terms = {name: getattr(args, name) for name in _TERMS if getattr(args, name) is not None}
    common = dict(month=args.month, out=args.out, pdf=args.pdf, home=store.home,
                  config=args.config, issue_date=args.issue_date, **terms)
    if args.notebook:
        common["notebook"] = args.notebook
    if not args.all_clients:
        _report(make_invoice(client=args.client, progress=not args.quiet, **common))
        return 0

    from ..invoice import clients_with_usage

    _, unattributed = clients_with_usage(args.month, home=store.home, config=args.config,
                                         include_sources=terms.get("include_sources"),
                                         timezone=terms.get("timezone"))
    done, failed = make_all_invoices(progress=not args.quiet, **common)
    for files in done:
        _report(files)
    if unattributed:
        print(f"note: {unattributed:,} calls in {args.month} have no client and are on no invoice",
              file=sys.stderr)
    for client, message in failed.items():
        print(f"llmlab: error: {client}: {message}", file=sys.stderr)
    return 2 if failed else 0


def _report(files) -> None:
    from ..invoicing.money import format_money

    print(f"{files.number}  {format_money(files.total, files.currency)}  -> {files.folder}")
    for path in (files.pdf, files.html, files.json, files.notebook):
        if path is not None:
            print(f"  {path}")
