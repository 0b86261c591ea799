"""Monthly invoices: one parameterised notebook per client, as HTML, PDF and invoice.json.

    from llmlab.invoice import build_invoice, make_invoice
    inv = build_invoice(month="2026-10", client="acme", markup_pct=15)   # numbers only, in-process
    files = make_invoice(month="2026-10", client="acme", markup_pct=15, out="invoices")
    files.pdf        # invoices/2026-10/acme/invoice.pdf (beside .ipynb, .html and invoice.json)

``make_invoice`` runs notebooks/invoice.ipynb with papermill; the notebook calls
``build_invoice`` and ``display_invoice``. Parameters are checked before any kernel starts, so a
malformed month, a negative markup or a client without usage fails fast with a clear message.
docs/users/invoices.md describes parameters, the config file and the rounding rule.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from .errors import InvoiceError
from .filters import Filter
from .invoicing.compute import Invoice, compute_invoice
from .invoicing.config import InvoicingConfig, load_config
from .invoicing.params import InvoiceRequest, resolve_request
from .invoicing.render import display_invoice, invoice_html
from .store import Store

__all__ = ["build_invoice", "display_invoice", "invoice_html", "write_json", "make_invoice",
           "make_all_invoices", "clients_with_usage", "render_notebook", "notebook_path",
           "Invoice", "InvoiceFiles", "InvoiceRequest"]

JSON_NAME = "invoice.json"
NOTEBOOK_NAME = "invoice.ipynb"
HTML_NAME = "invoice.html"
PDF_NAME = "invoice.pdf"
# Parameters a caller may set; they are passed to the notebook only when given.
TERM_PARAMETERS = ("project", "markup_pct", "currency", "fx_rate", "tax_pct", "invoice_number",
                   "due_days", "group_by", "include_sources", "timezone")


def build_invoice(*, month=None, client=None, project=None, markup_pct=None, currency=None,
                  fx_rate=None, tax_pct=None, invoice_number=None, due_days=None, group_by=None,
                  include_sources=None, issue_date=None, timezone=None, config=None, home=None,
                  today: date | None = None) -> Invoice:
    """Check the parameters and compute one invoice from the store (no notebook involved)."""
    cfg = config if isinstance(config, InvoicingConfig) else load_config(config, home=home)
    request = resolve_request(
        month=month, client=client, project=project, markup_pct=markup_pct, currency=currency,
        fx_rate=fx_rate, tax_pct=tax_pct, invoice_number=invoice_number, due_days=due_days,
        group_by=group_by, include_sources=include_sources, issue_date=issue_date,
        timezone=timezone, config=cfg, today=today)
    store = Store(home)
    if not store.db_path.exists():
        raise InvoiceError(f"no usage store at {store.db_path}; record usage first "
                           "(or point home / --home / $LLMLAB_HOME at your llmlab folder)")
    return compute_invoice(store, request)


def write_json(invoice: Invoice, folder: str | os.PathLike = ".") -> Path:
    """invoice.json: every number on the page, money as exact decimal strings."""
    path = Path(folder) / JSON_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(invoice.to_json(), indent=2, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    return path


def notebook_path() -> Path:
    """The invoice notebook: ``$LLMLAB_INVOICE_NOTEBOOK``, the packaged copy, or the repo's."""
    env = os.environ.get("LLMLAB_INVOICE_NOTEBOOK")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve().parent
    candidates += [here / "notebooks" / NOTEBOOK_NAME, here.parent / "notebooks" / NOTEBOOK_NAME]
    for p in candidates:
        if p.is_file():
            return p
    raise InvoiceError("cannot find the invoice notebook (looked in "
                       + ", ".join(str(p) for p in candidates) + "); pass --notebook")


@dataclass
class InvoiceFiles:
    """What one invoice run wrote."""

    folder: Path
    notebook: Path
    html: Path
    json: Path
    pdf: Path | None
    number: str
    total: Decimal
    currency: str


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "invoice"


def make_invoice(*, month=None, client=None, out: str | os.PathLike = "invoices", pdf: bool = True,
                 progress: bool = False, notebook: str | os.PathLike | None = None, config=None,
                 home=None, issue_date=None, **terms) -> InvoiceFiles:
    """Run the invoice notebook for one client and write notebook, HTML, PDF and invoice.json
    into ``<out>/<YYYY-MM>/<client>/``."""
    unknown = set(terms) - set(TERM_PARAMETERS)
    if unknown:
        raise InvoiceError(f"unknown invoice parameter(s) {', '.join(sorted(unknown))}")
    store = Store(home)
    home_path = store.db_path.resolve()
    cfg = load_config(config, home=store.home)
    # Fail fast, before a kernel starts: the same checks the notebook makes.
    invoice = build_invoice(month=month, client=client, config=cfg, home=home_path,
                            issue_date=issue_date, **terms)
    r = invoice.request
    folder = Path(out).expanduser().resolve() / r.month / _slug(r.billed_name)
    parameters: dict[str, Any] = {
        "month": r.month, "client": client, "issue_date": r.issue_date.isoformat(),
        "home": str(home_path), "config": str(cfg.path.resolve()) if cfg.path else None,
        "output_dir": ".",
    }
    for name, value in terms.items():
        if value is not None:
            parameters[name] = (str(value) if isinstance(value, Decimal)
                                else list(value) if isinstance(value, tuple) else value)
    from .invoicing.output import execute_notebook

    nb_out = folder / NOTEBOOK_NAME
    for stale in (JSON_NAME, HTML_NAME, PDF_NAME):
        (folder / stale).unlink(missing_ok=True)
    execute_notebook(Path(notebook) if notebook else notebook_path(), nb_out, parameters,
                     cwd=folder, progress=progress)
    return _finish(folder, pdf=pdf)


def render_notebook(executed: str | os.PathLike, *, pdf: bool = True) -> InvoiceFiles:
    """HTML and PDF for a notebook already executed (e.g. by papermill on the command line).

    invoice.json is expected beside it (the notebook writes it into its ``output_dir``)."""
    nb = Path(executed).expanduser().resolve()
    if not nb.is_file():
        raise InvoiceError(f"{nb} does not exist")
    return _finish(nb.parent, pdf=pdf, notebook=nb)


def _finish(folder: Path, *, pdf: bool, notebook: Path | None = None) -> InvoiceFiles:
    from .invoicing.output import export_html, print_pdf

    nb = notebook or folder / NOTEBOOK_NAME
    json_path = folder / JSON_NAME
    if not json_path.exists():
        raise InvoiceError(f"{json_path} was not written; the notebook's output_dir must be "
                           "the folder the executed notebook is in")
    data = json.loads(json_path.read_text(encoding="utf-8"))
    html = export_html(nb, folder / (nb.stem + ".html" if notebook else HTML_NAME))
    pdf_path = print_pdf(html, html.with_suffix(".pdf")) if pdf else None
    return InvoiceFiles(folder=folder, notebook=nb, html=html, json=json_path, pdf=pdf_path,
                        number=data["number"], total=Decimal(data["totals"]["total"]),
                        currency=data["currency"])


def clients_with_usage(month, *, home=None, config=None, include_sources=None,
                       timezone=None) -> tuple[list[str], int]:
    """(clients with calls in the month, number of calls in it without a client)."""
    from .invoicing.params import month_bounds, parse_sources

    cfg = config if isinstance(config, InvoicingConfig) else load_config(config, home=home)
    terms = cfg.terms(None)
    start, end = month_bounds(month)
    flt = Filter.build(since=start, until=end, timezone=timezone or terms.get("timezone") or "UTC",
                       source=parse_sources(include_sources if include_sources is not None
                                            else terms.get("include_sources")))
    where, params = flt.sql()
    store = Store(home)
    with store.read() as con:
        clients = [r[0] for r in con.execute(
            f"SELECT DISTINCT client FROM requests WHERE {where} AND client IS NOT NULL "
            "ORDER BY 1", params).fetchall()]
        unattributed = con.execute(
            f"SELECT count(*) FROM requests WHERE {where} AND client IS NULL", params).fetchone()[0]
    return clients, int(unattributed)


def make_all_invoices(*, month, out="invoices", pdf: bool = True, progress: bool = True,
                      home=None, config=None, **kw) -> tuple[list[InvoiceFiles], dict[str, str]]:
    """One invoice per client with usage in the month; a failing client does not stop the rest.

    Returns (files written, {client: error message})."""
    from tqdm.auto import tqdm

    if kw.get("project"):
        raise InvoiceError("--all-clients bills every client; it cannot be combined with a project")
    clients, _ = clients_with_usage(month, home=home, config=config,
                                    include_sources=kw.get("include_sources"),
                                    timezone=kw.get("timezone"))
    if not clients:
        raise InvoiceError(f"no client has usage in {month}")
    done: list[InvoiceFiles] = []
    failed: dict[str, str] = {}
    bar = tqdm(clients, desc=f"invoices {month}", unit="client", disable=not progress)
    for name in bar:
        bar.set_postfix_str(name)
        try:
            done.append(make_invoice(month=month, client=name, out=out, pdf=pdf, home=home,
                                     config=config, progress=False, **kw))
        except InvoiceError as exc:
            failed[name] = str(exc)
    return done, failed
