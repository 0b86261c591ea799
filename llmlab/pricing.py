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
