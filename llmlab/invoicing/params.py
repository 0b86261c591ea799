"""Invoice parameters: checked, merged with the invoicing config, resolved to exact values.

Precedence for every term: explicit parameter > ``[clients.<name>]`` > ``[defaults]`` > built-in.
Every bad value raises :class:`~llmlab.errors.InvoiceError` with a message that says how to fix it.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from ..errors import InvoiceError, QueryError
from ..filters import zone
from .config import InvoicingConfig, Party
from .money import to_decimal

GROUP_BY = ("model", "project", "day")
DEFAULT_NUMBER = "INV-{yyyymm}-{CLIENT}"
_MONTH_RE = re.compile(r"^(\d{4})-?(\d{2})$")
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")


@dataclass
class InvoiceRequest:
    """Everything needed to compute one invoice, checked and exact."""

    month: str                    # "YYYY-MM"
    start: date                   # first day of the month
    end: date                     # last day of the month (inclusive)
    tz: ZoneInfo
    client: str | None
    project: str | None
    currency: str
    fx_rate: Decimal              # currency units per 1 USD
    markup_pct: Decimal
    tax_pct: Decimal
    tax_label: str
    number: str
    issue_date: date
    due_date: date
    group_by: str
    sources: list[str] | None     # None: every source
    issuer: Party | None
    recipient: Party
    notes: list[str] = field(default_factory=list)
    period_complete: bool = True
    config_path: str | None = None

    @property
    def billed_name(self) -> str:
        return self.client or self.project or ""

    @property
    def month_label(self) -> str:
        return self.start.strftime("%B %Y")


def parse_month(value: Any) -> tuple[int, int]:
    """``"2026-10"`` (or ``"202610"``, or the int papermill's ``-p`` makes of it) -> (2026, 10)."""
    hint = ("write it as YYYY-MM, e.g. 2026-10 (with papermill pass it as a string: "
            "-r month 2026-10)")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvoiceError(f"month={value!r} is not a month; {hint}")
    m = _MONTH_RE.match(str(value).strip())
    if not m:
        raise InvoiceError(f"month={value!r} is not a month; {hint}")
    year, month = int(m.group(1)), int(m.group(2))
    if not 1 <= month <= 12 or year < 1970:
        raise InvoiceError(f"month={value!r} is not a month; {hint}")
    return year, month


def month_bounds(value: Any) -> tuple[date, date]:
    """First and last day of a month given as ``"YYYY-MM"``."""
    year, month = parse_month(value)
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def previous_month(today: date) -> tuple[int, int]:
    first = today.replace(day=1) - timedelta(days=1)
    return first.year, first.month


def _parse_date(value: Any, what: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise InvoiceError(f"{what}={value!r} is not a date; write it as YYYY-MM-DD") from None


def _pick(name: str, explicit: Any, terms: dict[str, Any], default: Any) -> Any:
    if explicit is not None and explicit != "":
        return explicit
    return terms.get(name, default)


def parse_sources(value: Any) -> list[str] | None:
    """``None`` / ``"all"`` -> every source; ``"proxy,claude-code"`` or a list -> those."""
    if value is None or value == "" or value == "all":
        return None
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
    elif isinstance(value, (list, tuple, set)):
        items = [str(v).strip() for v in value]
    else:
        raise InvoiceError(f"include_sources must be a list or comma-separated text, not {value!r}")
    items = [v for v in items if v]
    return sorted(set(items)) or None


def resolve_request(*, month=None, client=None, project=None, markup_pct=None, currency=None,
                    fx_rate=None, tax_pct=None, tax_label=None, invoice_number=None,
                    due_days=None, group_by=None, include_sources=None, issue_date=None,
                    timezone=None, config: InvoicingConfig, today: date | None = None
                    ) -> InvoiceRequest:
    """Check and resolve the parameters of one invoice (the store is not consulted here)."""
    client = str(client).strip() if client not in (None, "") else None
    project = str(project).strip() if project not in (None, "") else None
    if not client and not project:
        raise InvoiceError("say whom to bill: give a client (or a project)")
    name = client or project
    terms = config.terms(name)

    try:
        tz = zone(_pick("timezone", timezone, terms, "UTC"))
    except QueryError as exc:
        raise InvoiceError(str(exc)) from None
    today = today or datetime.now(tz).date()

    if month is None or month == "":
        year, mon = previous_month(today)
    else:
        year, mon = parse_month(month)
    start = date(year, mon, 1)
    end = date(year, mon, calendar.monthrange(year, mon)[1])
    if start > today:
        raise InvoiceError(
            f"month {year:04d}-{mon:02d} is in the future (today is {today.isoformat()} in "
            f"{tz.key}); invoices cover months that have started")

    currency_value = str(_pick("currency", currency, terms, "USD")).strip().upper()
    if not _CURRENCY_RE.match(currency_value):
        raise InvoiceError(f"currency={currency_value!r} is not a 3-letter ISO code such as USD or EUR")
    fx_raw = fx_rate if fx_rate not in (None, "") else None
    if fx_raw is None and str(terms.get("currency", "USD")).strip().upper() == currency_value:
        # A configured rate belongs to the configured currency, never to another one.
        fx_raw = terms.get("fx_rate")
    if fx_raw is None:
        if currency_value != "USD":
            raise InvoiceError(
                f"currency {currency_value} needs fx_rate ({currency_value} per 1 USD): costs are "
                "recorded in USD and llmlab never fetches exchange rates")
        fx = Decimal(1)
    else:
        fx = to_decimal(fx_raw, "fx_rate")
        if fx <= 0:
            raise InvoiceError(f"fx_rate must be greater than 0, got {fx_raw!r}")
        if currency_value == "USD" and fx != 1:
            raise InvoiceError("fx_rate converts USD into the invoice currency; for USD it must be 1")

    markup = to_decimal(_pick("markup_pct", markup_pct, terms, 0), "markup_pct")
    if markup < 0:
        raise InvoiceError(f"markup_pct must be 0 or more, got {markup} "
                           "(a negative markup would bill below cost)")
    tax = to_decimal(_pick("tax_pct", tax_pct, terms, 0), "tax_pct")
    if not 0 <= tax <= 100:
        raise InvoiceError(f"tax_pct must be between 0 and 100, got {tax}")

    due_raw = _pick("due_days", due_days, terms, 30)
    try:
        due = int(str(due_raw).strip())
    except ValueError:
        raise InvoiceError(f"due_days={due_raw!r} is not a whole number of days") from None
    if due < 0:
        raise InvoiceError(f"due_days must be 0 or more, got {due}")
    issued = _parse_date(issue_date, "issue_date") if issue_date not in (None, "") else today

    group = str(_pick("group_by", group_by, terms, "model")).strip().lower()
    if group not in GROUP_BY:
        raise InvoiceError(f"group_by={group!r}; choose one of {', '.join(GROUP_BY)}")

    number = _invoice_number(_pick("number", invoice_number, terms, DEFAULT_NUMBER), name, start)
    notes = terms.get("notes", [])
    notes = [notes] if isinstance(notes, str) else [str(n) for n in notes]

    return InvoiceRequest(
        month=f"{year:04d}-{mon:02d}", start=start, end=end, tz=tz, client=client, project=project,
        currency=currency_value, fx_rate=fx, markup_pct=markup, tax_pct=tax,
        tax_label=str(_pick("tax_label", tax_label, terms, "Tax")),
        number=number, issue_date=issued, due_date=issued + timedelta(days=due), group_by=group,
        sources=parse_sources(_pick("include_sources", include_sources, terms, None)),
        issuer=config.issuer, recipient=config.recipient(name), notes=notes,
        period_complete=end < today, config_path=str(config.path) if config.path else None,
    )


def _invoice_number(template: Any, name: str, start: date) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")
    fields = {"client": slug, "CLIENT": slug.upper(), "month": f"{start:%Y-%m}",
              "yyyymm": f"{start:%Y%m}", "year": f"{start:%Y}", "mm": f"{start:%m}"}
    try:
        number = str(template).format(**fields)
    except (KeyError, IndexError, ValueError) as exc:
        raise InvoiceError(
            f"invoice number template {template!r} is malformed ({exc}); it may use "
            + ", ".join("{" + k + "}" for k in fields)) from None
    if not number.strip():
        raise InvoiceError("invoice_number is empty")
    return number.strip()
