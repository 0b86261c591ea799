"""The invoicing config file: who sends the invoice, who receives it, and default terms.

A small TOML file, by default ``$LLMLAB_HOME/invoicing.toml`` (docs/users/invoices.md has a full
example). Numbers are read as exact decimals. Unknown keys are errors, so a typo such as
``markup = 15`` (for ``markup_pct``) cannot silently bill without a markup.

    [issuer]            name, address (list of lines), email, phone, website, tax_id, payment (lines)
    [defaults]          any key of TERM_KEYS
    [clients.<name>]    recipient details (RECIPIENT_KEYS) and any key of TERM_KEYS for this client
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..errors import InvoiceError
from ..paths import resolve_home

CONFIG_FILENAME = "invoicing.toml"
ISSUER_KEYS = ("name", "address", "email", "phone", "website", "tax_id", "payment")
RECIPIENT_KEYS = ("name", "address", "email", "attention", "tax_id", "reference")
# Terms a parameter can also set; an explicit parameter wins over [clients.X], which wins
# over [defaults], which wins over the built-in default.
TERM_KEYS = ("currency", "fx_rate", "markup_pct", "tax_pct", "tax_label", "due_days", "timezone",
             "group_by", "include_sources", "number", "notes")


@dataclass
class Party:
    """The issuer or the recipient as printed on the invoice."""

    name: str = ""
    address: list[str] = field(default_factory=list)
    email: str = ""
    phone: str = ""
    website: str = ""
    tax_id: str = ""
    attention: str = ""
    reference: str = ""
    payment: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in ("", [], None)}


@dataclass
class InvoicingConfig:
    path: Path | None = None
    issuer: Party | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    clients: dict[str, dict[str, Any]] = field(default_factory=dict)

    def recipient(self, name: str) -> Party:
        """The recipient block for a client (or project); just its name if not configured."""
        entry = self.clients.get(name, {})
        details = {k: entry[k] for k in RECIPIENT_KEYS if k in entry}
        details.setdefault("name", name)
        return Party(**details)

    def terms(self, name: str | None) -> dict[str, Any]:
        """[defaults] overlaid with the [clients.<name>] terms."""
        merged = dict(self.defaults)
        if name:
            merged.update({k: v for k, v in self.clients.get(name, {}).items() if k in TERM_KEYS})
        return merged


def default_config_path(home: str | os.PathLike | None = None) -> Path:
    return resolve_home(home) / CONFIG_FILENAME


def load_config(path: str | os.PathLike | None = None, *,
                home: str | os.PathLike | None = None) -> InvoicingConfig:
    """Read the config; a missing default file gives an empty config (the invoice is a draft)."""
    explicit = path is not None and str(path) != ""
    p = Path(path).expanduser() if explicit else default_config_path(home)
    if not p.exists():
        if explicit:
            raise InvoiceError(f"invoicing config {p} does not exist")
        return InvoicingConfig(path=None)
    try:
        with p.open("rb") as fh:
            data = tomllib.load(fh, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise InvoiceError(f"invoicing config {p} is not valid TOML: {exc}") from exc
    except OSError as exc:
        raise InvoiceError(f"cannot read invoicing config {p}: {exc}") from exc
    return parse_config(data, path=p)


def parse_config(data: dict[str, Any], *, path: Path | None = None) -> InvoicingConfig:
    where = str(path) if path else "invoicing config"
    _check_keys(data, ("issuer", "defaults", "clients"), where)
    issuer = None
    if "issuer" in data:
        raw = _table(data["issuer"], f"{where} [issuer]")
        _check_keys(raw, ISSUER_KEYS, f"{where} [issuer]")
        issuer = Party(**{k: _field(k, v, f"{where} [issuer]") for k, v in raw.items()})
        if not issuer.name:
            raise InvoiceError(f"{where} [issuer] needs a name")
    defaults = _table(data.get("defaults", {}), f"{where} [defaults]")
    _check_keys(defaults, TERM_KEYS, f"{where} [defaults]")
    clients: dict[str, dict[str, Any]] = {}
    for name, entry in _table(data.get("clients", {}), f"{where} [clients]").items():
        section = f"{where} [clients.{name}]"
        entry = _table(entry, section)
        _check_keys(entry, RECIPIENT_KEYS + TERM_KEYS, section)
        clients[str(name)] = {k: _field(k, v, section) if k in RECIPIENT_KEYS else v
                              for k, v in entry.items()}
    return InvoicingConfig(path=path, issuer=issuer, defaults=defaults, clients=clients)


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvoiceError(f"{where} must be a table")
    return value


def _check_keys(table: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise InvoiceError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")


def _field(key: str, value: Any, where: str) -> Any:
    if key in ("address", "payment"):
        if isinstance(value, str):
            return [line.strip() for line in value.splitlines() if line.strip()]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise InvoiceError(f"{where} {key} must be a list of lines")
    if not isinstance(value, str):
        raise InvoiceError(f"{where} {key} must be text")
    return value
