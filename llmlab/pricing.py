"""What a usage record costs: LiteLLM's bundled price table plus the user's overrides.

The table is LiteLLM's own offline copy (``model_prices_and_context_window_backup.json``), read
as a file so pricing never imports litellm (a 3 s import) and never fetches anything
(``LITELLM_LOCAL_MODEL_COST_MAP=True`` is set for the places that do import litellm).
A model with no price costs ``None`` -- reported as unpriced, never silently as 0.

Money is ``Decimal``: prices are taken from their decimal text, products are exact, and a
record's cost is kept to 12 decimal places (the ``DECIMAL(18,12)`` of the store).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Mapping

from .errors import PricingError

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

COST_QUANTUM = Decimal("0.000000000001")
TIER_THRESHOLD = 200_000
# Anthropic's cache-write multipliers of the input price, used when the table has no explicit
# cache-write price (the same rule ccusage applies).
CACHE_WRITE_5M_MULTIPLIER = Decimal("1.25")
CACHE_WRITE_1H_MULTIPLIER = Decimal("2")
_PRICE_KEYS = (
    "input_cost_per_token", "output_cost_per_token", "cache_read_input_token_cost",
    "cache_creation_input_token_cost", "cache_creation_input_token_cost_above_1hr",
    "input_cost_per_token_above_200k_tokens", "output_cost_per_token_above_200k_tokens",
    "cache_read_input_token_cost_above_200k_tokens",
    "cache_creation_input_token_cost_above_200k_tokens",
)


@functools.lru_cache(maxsize=1)
def bundled_table() -> dict[str, dict[str, Any]]:
    """LiteLLM's offline price table, loaded from the installed package's data file."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(list(spec.submodule_search_locations)[0]) / "model_prices_and_context_window_backup.json"
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    table.pop("sample_spec", None)
    return table


def _dec(v: Any) -> Decimal | None:
    if v is None:
        return None
    try:
        return Decimal(str(v))
    except Exception as exc:  # noqa: BLE001 - any bad literal is a config error
        raise PricingError(f"price {v!r} is not a number") from exc


@dataclass(frozen=True)
class Usage:
    """Additive token counts of one call (DESIGN §3)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0


class PriceBook:
    """Looks up per-token prices; ``overrides`` win over the bundled table.

    ``overrides`` maps a model name to a mapping of LiteLLM price keys, e.g.
    ``{"my-finetune": {"input_cost_per_token": 3e-6, "output_cost_per_token": 1.2e-5}}``.
    """

    def __init__(self, overrides: Mapping[str, Mapping[str, Any]] | None = None):
        self.overrides: dict[str, dict[str, Decimal | None]] = {}
        for model, prices in (overrides or {}).items():
            if not isinstance(prices, Mapping):
                raise PricingError(f"price override for {model!r} must be a mapping of price keys")
            unknown = set(prices) - set(_PRICE_KEYS)
            if unknown:
                raise PricingError(
                    f"price override for {model!r} has unknown keys {sorted(unknown)}; "
                    f"known: {', '.join(_PRICE_KEYS)}"
                )
            self.overrides[model] = {k: _dec(v) for k, v in prices.items()}

    def lookup(self, model: str | None, provider: str | None = None) -> tuple[dict | None, str | None]:
        """(prices, source) for a model, trying the names LiteLLM itself would."""
        if not model:
            return None, None
        for name in _candidates(model, provider):
            if name in self.overrides:
                return self.overrides[name], "override"
        table = bundled_table()
        for name in _candidates(model, provider):
            entry = table.get(name)
            if entry and entry.get("input_cost_per_token") is not None:
                return {k: _dec(entry.get(k)) for k in _PRICE_KEYS}, f"litellm:{name}"
        return None, None

    def provider_of(self, model: str) -> str | None:
        for name in _candidates(model, None):
            entry = bundled_table().get(name)
            if entry:
                return entry.get("litellm_provider")
        return None

    def cost(self, model: str | None, usage: Usage, provider: str | None = None) -> tuple[Decimal | None, str | None]:
        prices, source = self.lookup(model, provider)
        if prices is None:
            return None, None
        inp = prices.get("input_cost_per_token") or Decimal(0)
        out = prices.get("output_cost_per_token") or Decimal(0)
        read = prices.get("cache_read_input_token_cost")
        w5 = prices.get("cache_creation_input_token_cost")
        w1 = prices.get("cache_creation_input_token_cost_above_1hr")
        total = (
            _tiered(usage.input_tokens, inp, prices.get("input_cost_per_token_above_200k_tokens"))
            + _tiered(usage.output_tokens, out, prices.get("output_cost_per_token_above_200k_tokens"))
            + _tiered(usage.cache_read_tokens, read if read is not None else inp,
                      prices.get("cache_read_input_token_cost_above_200k_tokens"))
            + _tiered(usage.cache_write_5m_tokens,
                      w5 if w5 is not None else inp * CACHE_WRITE_5M_MULTIPLIER,
                      prices.get("cache_creation_input_token_cost_above_200k_tokens"))
            + usage.cache_write_1h_tokens * (w1 if w1 is not None else inp * CACHE_WRITE_1H_MULTIPLIER)
        )
        return total.quantize(COST_QUANTUM), source

    def claude_code_rates(self, model: str | None) -> "ClaudeRates | None":
        """Per-token rates of a model named in a Claude Code log, resolved the way ccusage 20
        does (see :func:`claude_code_rates`); ``None`` for an unknown model. Cached."""
        if not model:
            return None
        cache = self.__dict__.setdefault("_claude_rates", {})
        if model not in cache:
            cache[model] = _resolve_claude_rates(self, model)
        return cache[model]

    def claude_code_cost(self, model: str | None, usage: Usage, *, fast: bool = False
                         ) -> tuple[Decimal | None, str | None]:
        """Cost of one Claude Code message by ccusage's rules; ``(None, None)`` if unpriced."""
        rates = self.claude_code_rates(model)
        if rates is None:
            return None, None
        return rates.cost(usage, fast=fast), rates.source


def _tiered(tokens: int, base: Decimal, above: Decimal | None) -> Decimal:
    """Tokens past 200k at the higher rate where the table lists one."""
    if not tokens:
        return Decimal(0)
    if above is None or tokens <= TIER_THRESHOLD:
        return tokens * base
    return TIER_THRESHOLD * base + (tokens - TIER_THRESHOLD) * above


def _candidates(model: str, provider: str | None) -> list[str]:
    names = [model]
    if provider and not model.startswith(provider + "/"):
        names.append(f"{provider}/{model}")
    if "/" in model:
        names.append(model.split("/", 1)[1])
    return names


@functools.lru_cache(maxsize=1)
def default_pricebook() -> PriceBook:
    return PriceBook()


# -- Claude Code logs: the pricing rules ccusage 20 applies --------------------------------------
# ccusage prices each message from LiteLLM's table with these rules, and reports built from
# Claude Code logs should agree with it to the cent:
#   - a 5-minute cache write costs the table's cache-creation price (1.25x input if absent), a
#     1-hour write always 2x the input price (2x the above-200k input price past 200k tokens);
#   - every token bucket is tiered on its own: tokens past 200k at the table's above-200k price;
#   - ``speed: "fast"`` multiplies the whole cost (6x for Opus 4.6/4.7, 2x for Opus 4.8, else the
#     table's ``provider_specific_entry.fast``);
#   - a model missing from the table under its own name (``claude-opus-4-1-20250805``) is found
#     under a provider's spelling of it (``anthropic.claude-opus-4-1-20250805-v1:0``), and an
#     entry without long-context prices takes them from a sibling entry of the same model with
#     the same base prices (LiteLLM lists Sonnet 4.5's above-200k prices on its Bedrock/Vertex
#     entries only).
CLAUDE_FAST_MULTIPLIERS = {"claude-opus-4-6": Decimal(6), "claude-opus-4-7": Decimal(6),
                           "claude-opus-4-8": Decimal(2)}
CACHE_READ_DEFAULT_MULTIPLIER = Decimal("0.1")
_REGION_PREFIX = re.compile(r"^(us|eu|apac|au|jp|global|us-gov)\.")
_VERSION_SUFFIX = re.compile(r"-v\d+(:\d+)?$")
_DATE_SUFFIX = re.compile(r"-(\d{8}|default|latest)$")
_TIER_KEYS = ("input_cost_per_token_above_200k_tokens", "output_cost_per_token_above_200k_tokens",
              "cache_read_input_token_cost_above_200k_tokens",
              "cache_creation_input_token_cost_above_200k_tokens")
_CACHE_KEYS = ("cache_read_input_token_cost", "cache_creation_input_token_cost")


@dataclass(frozen=True)
class ClaudeRates:
    """Resolved per-token prices of one model (USD per token)."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write_5m: Decimal
    input_above: Decimal | None = None
    output_above: Decimal | None = None
    cache_read_above: Decimal | None = None
    cache_write_5m_above: Decimal | None = None
    fast_multiplier: Decimal = Decimal(1)
    source: str = ""

    @property
    def cache_write_1h(self) -> Decimal:
        return self.input * CACHE_WRITE_1H_MULTIPLIER

    @property
    def cache_write_1h_above(self) -> Decimal | None:
        return None if self.input_above is None else self.input_above * CACHE_WRITE_1H_MULTIPLIER

    def cost(self, usage: Usage, *, fast: bool = False) -> Decimal:
        total = (_tiered(usage.input_tokens, self.input, self.input_above)
                 + _tiered(usage.output_tokens, self.output, self.output_above)
                 + _tiered(usage.cache_read_tokens, self.cache_read, self.cache_read_above)
                 + _tiered(usage.cache_write_5m_tokens, self.cache_write_5m, self.cache_write_5m_above)
                 + _tiered(usage.cache_write_1h_tokens, self.cache_write_1h, self.cache_write_1h_above))
        if fast:
            total *= self.fast_multiplier
        return total.quantize(COST_QUANTUM)


def _canonical(key: str) -> str:
    """A table key as the bare Anthropic model name (``us.anthropic.x-v1:0`` -> ``x``)."""
    k = key.lower().rsplit("/", 1)[-1]
    k = _REGION_PREFIX.sub("", k)
    k = k.removeprefix("anthropic.")
    return _VERSION_SUFFIX.sub("", k).replace("@", "-")


def _provider_rank(key: str, entry: Mapping[str, Any]) -> int:
    """Prefer Anthropic's own prices, then un-surcharged cloud entries, then resellers."""
    provider = str(entry.get("litellm_provider") or "")
    if provider == "anthropic":
        return 0
    if provider.startswith("bedrock") and not _REGION_PREFIX.match(key.rsplit("/", 1)[-1]) \
            or key.startswith("global."):
        return 1
    if provider.startswith("vertex_ai"):
        return 2
    return 5 if _REGION_PREFIX.match(key) else 4


@functools.lru_cache(maxsize=1)
def _claude_index() -> dict[str, list[tuple[tuple, str]]]:
    """Bare model name (with and without its date) -> [(rank, key)] of priced table entries."""
    index: dict[str, list[tuple[tuple, str]]] = {}
    for key, entry in bundled_table().items():
        if "claude" not in key or entry.get("input_cost_per_token") is None:
            continue
        missing = sum(entry.get(k) is None for k in ("cache_read_input_token_cost",
                                                       "cache_creation_input_token_cost"))
        rank = (missing, _provider_rank(key, entry), key)
        canon = _canonical(key)
        for name in {canon, _DATE_SUFFIX.sub("", canon)}:
            index.setdefault(name, []).append((rank, key))
    for entries in index.values():
        entries.sort()
    return index


def _resolve_claude_rates(book: PriceBook, model: str) -> ClaudeRates | None:
    base = model.removesuffix("-fast")
    table = bundled_table()
    prices: Mapping[str, Any] | None = None
    source = ""
    if base in book.overrides:
        prices, source = book.overrides[base], "override"
    elif (table.get(base) or {}).get("input_cost_per_token") is not None:
        prices, source = table[base], f"litellm:{base}"
    else:
        canon = _canonical(base)
        for name in (canon, _DATE_SUFFIX.sub("", canon)):
            hits = [k for _, k in _claude_index().get(name, []) if _canonical(k) in (canon, name)]
            if hits:
                prices, source = table[hits[0]], f"litellm:{hits[0]}"
                break
    if prices is None:
        return None
    p = {k: _dec(prices.get(k)) for k in _PRICE_KEYS}
    if source != "override":
        p.update(_from_siblings(base, p))
    inp = p["input_cost_per_token"] or Decimal(0)
    fast = next((m for prefix, m in CLAUDE_FAST_MULTIPLIERS.items()
                 if _DATE_SUFFIX.sub("", _canonical(base)).startswith(prefix)), None)
    if fast is None:
        specific = prices.get("provider_specific_entry")
        fast = _dec(specific.get("fast")) if isinstance(specific, Mapping) and specific.get("fast") else Decimal(1)
    return ClaudeRates(
        input=inp,
        output=p["output_cost_per_token"] or Decimal(0),
        cache_read=p["cache_read_input_token_cost"] if p["cache_read_input_token_cost"] is not None
        else inp * CACHE_READ_DEFAULT_MULTIPLIER,
        cache_write_5m=p["cache_creation_input_token_cost"]
        if p["cache_creation_input_token_cost"] is not None else inp * CACHE_WRITE_5M_MULTIPLIER,
        input_above=p["input_cost_per_token_above_200k_tokens"],
        output_above=p["output_cost_per_token_above_200k_tokens"],
        cache_read_above=p["cache_read_input_token_cost_above_200k_tokens"],
        cache_write_5m_above=p["cache_creation_input_token_cost_above_200k_tokens"],
        fast_multiplier=fast, source=source)


def _from_siblings(model: str, p: Mapping[str, Decimal | None]) -> dict[str, Decimal | None]:
    """Prices an entry lacks (long-context, cache) taken from another entry of the same model
    with the same base prices, e.g. Bedrock's listing of Sonnet 4.5's above-200k prices."""
    table = bundled_table()
    out: dict[str, Decimal | None] = {}
    wanted = [k for k in _TIER_KEYS + _CACHE_KEYS if p.get(k) is None]
    for _, key in _claude_index().get(_DATE_SUFFIX.sub("", _canonical(model)), []):
        entry = table[key]
        if (_dec(entry.get("input_cost_per_token")) != p["input_cost_per_token"]
                or _dec(entry.get("output_cost_per_token")) != p["output_cost_per_token"]):
            continue
        if _TIER_KEYS[0] in wanted and entry.get(_TIER_KEYS[0]) is not None:
            out.update({k: _dec(entry.get(k)) for k in _TIER_KEYS})
            wanted = [k for k in wanted if k not in _TIER_KEYS]
        for k in [k for k in wanted if k in _CACHE_KEYS and entry.get(k) is not None]:
            out[k] = _dec(entry.get(k))
            wanted.remove(k)
        if not wanted:
            break
    return out
