"""The numbers of one invoice, computed exactly from the usage store.

Costs come out of DuckDB as exact sums of the ``DECIMAL(18,12)`` ``cost_usd`` column and stay
``Decimal`` from there on. The rounding rule (docs/users/invoices.md), per line item:

    cost   = round_half_up(sum(cost_usd) * fx_rate)          to the currency's minor unit
    markup = round_half_up(cost * markup_pct / 100)
    amount = cost + markup

and for the invoice:

    subtotal = sum(cost)          markup = sum(markup)         net = subtotal + markup = sum(amount)
    tax      = round_half_up(net * tax_pct / 100)              total = net + tax

so every printed column adds up exactly. The daily chart splits the net amount over the days in
proportion to each day's exact cost (largest remainder), so the days add up to the net as well. Calls without a price (``cost_usd IS NULL``) are never
billed as 0: they are left out of the line items and listed in the notes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from ..errors import InvoiceError
from ..filters import Filter
from ..store import Store
from .money import format_money, minor_units, round_money
from .params import InvoiceRequest

SCHEMA = "llmlab.invoice/1"
KNOWN_SOURCES = ("proxy", "claude-code")
TOKEN_KINDS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens",
               "reasoning_tokens", "total_tokens")
_SUMS = """
    count(*)::BIGINT AS requests,
    count(*) FILTER (WHERE status_code >= 400 OR error_type IS NOT NULL)::BIGINT AS failed,
    coalesce(sum(input_tokens), 0)::BIGINT AS input_tokens,
    coalesce(sum(cache_read_tokens), 0)::BIGINT AS cache_read_tokens,
    coalesce(sum(cache_write_tokens), 0)::BIGINT AS cache_write_tokens,
    coalesce(sum(output_tokens), 0)::BIGINT AS output_tokens,
    coalesce(sum(reasoning_tokens), 0)::BIGINT AS reasoning_tokens,
    coalesce(sum(total_tokens), 0)::BIGINT AS total_tokens
"""
_GROUP_KEYS = {
    "model": ("coalesce(model, model_requested, '(unknown model)') AS model, "
              "coalesce(provider, '') AS provider"),
    "project": "coalesce(project, '(no project)') AS project",
    "day": "timezone(?, started_at)::DATE AS day",
}


@dataclass
class Tokens:
    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0

    def add(self, other: "Tokens") -> None:
        for k in TOKEN_KINDS:
            setattr(self, k, getattr(self, k) + getattr(other, k))

    def to_json(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in TOKEN_KINDS}


@dataclass
class LineItem:
    key: str                 # the model, project or ISO day
    description: str
    detail: str              # provider for model lines
    requests: int
    failed: int
    tokens: Tokens
    cost_usd: Decimal        # exact (12 decimal places), before conversion and rounding
    cost: Decimal            # in the invoice currency, rounded
    markup: Decimal
    amount: Decimal

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "description": self.description, "detail": self.detail,
                "requests": self.requests, "failed_requests": self.failed,
                "tokens": self.tokens.to_json(), "cost_usd_exact": str(self.cost_usd),
                "cost": str(self.cost), "markup": str(self.markup), "amount": str(self.amount)}


@dataclass
class UnpricedUsage:
    model: str
    provider: str
    requests: int
    tokens: Tokens
    first: datetime
    last: datetime

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "provider": self.provider, "requests": self.requests,
                "tokens": self.tokens.to_json(), "first_call": self.first.isoformat(),
                "last_call": self.last.isoformat()}


@dataclass
class Totals:
    requests: int
    failed: int
    tokens: Tokens
    cost_usd: Decimal
    subtotal: Decimal
    markup: Decimal
    net: Decimal
    tax: Decimal
    total: Decimal

    def to_json(self) -> dict[str, Any]:
        return {"requests": self.requests, "failed_requests": self.failed,
                "tokens": self.tokens.to_json(), "cost_usd_exact": str(self.cost_usd),
                "subtotal": str(self.subtotal), "markup": str(self.markup), "net": str(self.net),
                "tax": str(self.tax), "total": str(self.total)}


@dataclass
class Invoice:
    request: InvoiceRequest
    lines: list[LineItem]
    totals: Totals
    unpriced: list[UnpricedUsage]
    daily: list[tuple[date, Decimal]]     # the chart: the net amount allocated to days
    notes: list[str] = field(default_factory=list)
    generated_at: datetime = field(default_factory=lambda: datetime.now().astimezone())

    @property
    def draft(self) -> bool:
        """Without an issuer in the invoicing config, the invoice is a draft."""
        return self.request.issuer is None

    def money(self, value: Decimal) -> str:
        return format_money(value, self.request.currency)

    def to_json(self) -> dict[str, Any]:
        r = self.request
        return {
            "schema": SCHEMA,
            "number": r.number, "draft": self.draft,
            "issue_date": r.issue_date.isoformat(), "due_date": r.due_date.isoformat(),
            "period": {"month": r.month, "start": r.start.isoformat(), "end": r.end.isoformat(),
                       "timezone": r.tz.key, "complete": r.period_complete},
            "client": r.client, "project": r.project,
            "issuer": r.issuer.to_json() if r.issuer else None,
            "recipient": r.recipient.to_json(),
            "currency": r.currency, "fx_rate": str(r.fx_rate),
            "markup_pct": str(r.markup_pct), "tax_pct": str(r.tax_pct), "tax_label": r.tax_label,
            "group_by": r.group_by, "sources": r.sources,
            "rounding": "each line's cost and markup half-up to the currency's minor unit; "
                        "tax half-up on the net",
            "lines": [line.to_json() for line in self.lines],
            "totals": self.totals.to_json(),
            "unpriced": [u.to_json() for u in self.unpriced],
            "daily": [{"day": d.isoformat(), "amount": str(a)} for d, a in self.daily],
            "notes": self.notes,
            "generated_at": self.generated_at.isoformat(timespec="seconds"),
        }


def compute_invoice(store: Store, request: InvoiceRequest) -> Invoice:
    """Read the month's usage of one client (or project) and price it into an invoice."""
    r = request
    with store.read() as con:
        _check_sources(con, r)
        flt = Filter.build(since=r.start, until=r.end, timezone=r.tz.key, client=r.client,
                           project=r.project, source=r.sources)
        where, params = flt.sql()
        calls = con.execute(f"SELECT count(*) FROM requests WHERE {where}", params).fetchone()[0]
        if calls == 0:
            raise InvoiceError(_no_usage_message(con, r))
        key_sql = _GROUP_KEYS[r.group_by]
        key_params = [r.tz.key] if r.group_by == "day" else []
        priced = con.execute(
            f"SELECT {key_sql}, {_SUMS}, sum(cost_usd) AS cost_usd FROM requests "
            f"WHERE {where} AND cost_usd IS NOT NULL GROUP BY ALL", key_params + params).fetchall()
        unpriced = con.execute(
            "SELECT coalesce(model, model_requested, '(unknown model)'), coalesce(provider, ''), "
            f"{_SUMS}, min(started_at), max(started_at) FROM requests "
            f"WHERE {where} AND cost_usd IS NULL GROUP BY ALL ORDER BY 3 DESC, 1", params).fetchall()
        per_day = dict(con.execute(
            "SELECT timezone(?, started_at)::DATE, sum(cost_usd) FROM requests "
            f"WHERE {where} AND cost_usd IS NOT NULL GROUP BY ALL", [r.tz.key] + params).fetchall())

    lines = [_line(r, row) for row in priced]
    if r.group_by == "day":
        lines.sort(key=lambda line: line.key)
    else:
        lines.sort(key=lambda line: (-line.cost_usd, line.key, line.detail))
    totals = _totals(r, lines)
    days = [r.start + timedelta(days=i) for i in range((r.end - r.start).days + 1)]
    daily = list(zip(days, allocate(totals.net, [per_day.get(d, Decimal(0)) for d in days],
                                    r.currency)))
    unpriced_usage = [
        UnpricedUsage(model=row[0], provider=row[1], requests=row[2], tokens=Tokens(*row[4:10]),
                      first=row[10], last=row[11]) for row in unpriced]
    invoice = Invoice(request=r, lines=lines, totals=totals, unpriced=unpriced_usage, daily=daily)
    invoice.notes = _notes(invoice)
    return invoice


def allocate(total: Decimal, weights: list[Decimal], currency: str) -> list[Decimal]:
    """Split ``total`` in proportion to ``weights`` into minor units that add up to it exactly
    (largest remainder), so the chart's days sum to the net amount on the page."""
    weight_sum = sum(weights, Decimal(0))
    if weight_sum == 0 or total == 0:
        return [round_money(Decimal(0), currency) for _ in weights]
    unit = Decimal(1).scaleb(-minor_units(currency))
    units = int(total / unit)
    exact = [units * w / weight_sum for w in weights]
    floors = [int(e) for e in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (exact[i] - floors[i], -i),
                          reverse=True)
    for i in by_remainder[:units - sum(floors)]:
        floors[i] += 1
    return [f * unit for f in floors]


def _markup(r: InvoiceRequest, cost: Decimal) -> Decimal:
    return round_money(cost * r.markup_pct / 100, r.currency)


def _line(r: InvoiceRequest, row: tuple) -> LineItem:
    if r.group_by == "model":
        key, detail, rest = row[0], row[1], row[2:]
    else:
        key, detail, rest = row[0], "", row[1:]
    requests, failed = rest[0], rest[1]
    tokens = Tokens(*rest[2:8])
    cost_usd = Decimal(rest[8])
    cost = round_money(cost_usd * r.fx_rate, r.currency)
    markup = _markup(r, cost)
    if r.group_by == "day":
        description = f"{key:%a %d %b %Y}"
        key = key.isoformat()
    else:
        description = str(key)
        if detail and description.startswith(detail + "/"):
            description = description[len(detail) + 1:]  # "gemini/gemini-2.5-pro" reads twice
    return LineItem(key=str(key), description=description, detail=detail, requests=requests,
                    failed=failed, tokens=tokens, cost_usd=cost_usd, cost=cost, markup=markup,
                    amount=cost + markup)


def _totals(r: InvoiceRequest, lines: list[LineItem]) -> Totals:
    tokens = Tokens()
    for line in lines:
        tokens.add(line.tokens)
    subtotal = sum((line.cost for line in lines), Decimal(0))
    markup = sum((line.markup for line in lines), Decimal(0))
    net = subtotal + markup
    tax = round_money(net * r.tax_pct / 100, r.currency)
    return Totals(requests=sum(line.requests for line in lines),
                  failed=sum(line.failed for line in lines), tokens=tokens,
                  cost_usd=sum((line.cost_usd for line in lines), Decimal(0)),
                  subtotal=round_money(subtotal, r.currency), markup=round_money(markup, r.currency),
                  net=round_money(net, r.currency), tax=tax, total=round_money(net + tax, r.currency))


def _notes(inv: Invoice) -> list[str]:
    r = inv.request
    notes = [f"Billing period {r.start.day} {r.start:%B %Y} to {r.end.day} {r.end:%B %Y}, "
             f"{r.tz.key} time."]
    if not r.period_complete:
        notes.append(f"The month is not over: this invoice covers usage up to "
                     f"{r.issue_date.day} {r.issue_date:%B %Y}.")
    if r.currency != "USD":
        notes.append(f"Usage is metered in USD and converted at 1 USD = {r.fx_rate} {r.currency}.")
    if inv.totals.failed:
        notes.append(f"Requests include {inv.totals.failed:,} failed calls; they are charged only for "
                     "tokens the provider reported.")
    if inv.unpriced:
        n = sum(u.requests for u in inv.unpriced)
        models = ", ".join(f"{u.model} ({u.requests:,} calls)" for u in inv.unpriced)
        notes.append(f"{n:,} calls to models without a price are not charged on this invoice: "
                     f"{models}.")
    notes.extend(r.notes)
    return notes


def _check_sources(con, r: InvoiceRequest) -> None:
    if not r.sources:
        return
    known = {row[0] for row in con.execute(
        "SELECT DISTINCT source FROM requests WHERE source IS NOT NULL").fetchall()}
    known |= set(KNOWN_SOURCES)
    unknown = [s for s in r.sources if s not in known]
    if unknown:
        raise InvoiceError(f"unknown source(s) {', '.join(unknown)} in include_sources; "
                           f"known sources: {', '.join(sorted(known))}")


def _no_usage_message(con, r: InvoiceRequest) -> str:
    column = "client" if r.client else "project"
    name = r.client or r.project
    in_month = Filter.build(since=r.start, until=r.end, timezone=r.tz.key, source=r.sources)
    where, params = in_month.sql()
    that_month = [row[0] for row in con.execute(
        f"SELECT DISTINCT {column} FROM requests WHERE {where} AND {column} IS NOT NULL ORDER BY 1",
        params).fetchall()]
    every = [row[0] for row in con.execute(
        f"SELECT DISTINCT {column} FROM requests WHERE {column} IS NOT NULL ORDER BY 1").fetchall()]
    scope = f" from source(s) {', '.join(r.sources)}" if r.sources else ""
    what = f"{column} {name!r}" + (f" and project {r.project!r}" if r.client and r.project else "")
    msg = f"no usage for {what} in {r.month} ({r.tz.key}){scope}. "
    msg += (f"{column.capitalize()}s with usage in {r.month}: {', '.join(that_month)}. "
            if that_month else f"No {column} has usage in {r.month}. ")
    msg += (f"Known {column}s: {', '.join(every)}." if every
            else f"No call in the store has a {column} yet (attribute calls with the "
                 f"X-LLMLab-{column.capitalize()} header).")
    return msg
