"""Money on an invoice: exact decimals, one rounding rule, and how amounts are written.

The rule (docs/users/invoices.md): every amount on the page is rounded once, **half-up to the
currency's minor unit** (cents for USD/EUR, whole units for JPY), from exact decimal inputs.
Nothing on the money path is ever a float.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from ..errors import InvoiceError

# ISO 4217 currencies whose minor unit is not 1/100 (the common ones; everything else has cents).
_MINOR_UNITS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
    "RWF": 0, "UGX": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}
_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "CHF": "CHF ",
            "CAD": "CA$", "AUD": "A$"}


def minor_units(currency: str) -> int:
    return _MINOR_UNITS.get(currency.upper(), 2)


def round_money(value: Decimal, currency: str) -> Decimal:
    """Half-up to the currency's minor unit (0.125 USD -> 0.13, never banker's 0.12)."""
    if not isinstance(value, Decimal):
        raise TypeError(f"money must be a Decimal, not {type(value).__name__}")
    return value.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_UP)


def to_decimal(value: Any, what: str) -> Decimal:
    """A parameter as an exact Decimal; floats go through their shortest text (15 -> 15, 12.5 -> 12.5)."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool) or value is None:
        raise InvoiceError(f"{what} must be a number, not {value!r}")
    elif isinstance(value, (int, float, str)):
        try:
            result = Decimal(str(value).strip().rstrip("%").strip())
        except InvalidOperation:
            raise InvoiceError(f"{what}={value!r} is not a number") from None
    else:
        raise InvoiceError(f"{what} must be a number, not {type(value).__name__}")
    if not result.is_finite():
        raise InvoiceError(f"{what}={value!r} is not a finite number")
    return result


def format_money(value: Decimal, currency: str) -> str:
    """``$1,234.56``, ``€1,234.56``, ``-$3.00``; unknown codes as ``SEK 1,234.56``."""
    places = minor_units(currency)
    text = f"{abs(value):,.{places}f}"
    symbol = _SYMBOLS.get(currency.upper(), currency.upper() + " ")
    return f"{'-' if value < 0 else ''}{symbol}{text}"


def format_plain(value: Decimal, currency: str) -> str:
    """The amount without a symbol: ``1,234.56``."""
    return f"{value:,.{minor_units(currency)}f}"


def format_pct(value: Decimal) -> str:
    """``15%``, ``12.5%``, ``7.25%`` (no trailing zeros)."""
    text = format(value.normalize(), "f")
    return f"{text}%"


def format_int(value: int) -> str:
    return f"{int(value):,}"
