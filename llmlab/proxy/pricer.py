"""The price of a proxied call, looked up once per model and remembered.

Order: the deployment's own prices (``model_info`` / ``litellm_params`` in config.yaml), then
``LLMLabApp.price_overrides`` by public name, then LiteLLM's table (overrides first) by the
deployment's model and finally by the model the upstream reported. No price -> cost NULL, never 0.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Mapping

from ..pricing import PriceBook, Usage
from .config import OFFLINE_MODELS, Deployment
from .usage import Tokens

# The offline model runs on this machine and costs nothing: priced at 0, not left unpriced.
OFFLINE_PRICES = {name: {"input_cost_per_token": 0, "output_cost_per_token": 0} for name in OFFLINE_MODELS}
_MEMO_LIMIT = 4096


class _MemoBook(PriceBook):
    """PriceBook whose lookups (Decimal conversions of table rows) are done once per model."""

    def __init__(self, overrides=None):
        super().__init__(overrides)
        self._lookups: dict[tuple, tuple] = {}

    def lookup(self, model, provider=None):
        key = (model, provider)
        hit = self._lookups.get(key)
        if hit is None:
            if len(self._lookups) >= _MEMO_LIMIT:
                self._lookups.clear()
            hit = self._lookups[key] = super().lookup(model, provider)
        return hit


class Pricer:
    def __init__(self, overrides: Mapping[str, Mapping[str, Any]] | None = None):
        self.book = _MemoBook({**OFFLINE_PRICES, **dict(overrides or {})})
        self._deployment_books: dict[int, PriceBook] = {}
        self._memo: dict[tuple, tuple[PriceBook, str, str | None] | None] = {}

    def _resolve(self, dep: Deployment, reported: str | None) -> tuple[PriceBook, str, str | None] | None:
        key = (dep.model_name, dep.model, dep.provider, reported, id(dep.prices))
        try:
            return self._memo[key]
        except KeyError:
            pass
        found = None
        if dep.prices:
            book = self._deployment_books.get(id(dep.prices))
            if book is None:
                book = self._deployment_books[id(dep.prices)] = _MemoBook({dep.model: dep.prices})
            found = (book, dep.model, None)
        elif dep.model_name in self.book.overrides:
            found = (self.book, dep.model_name, None)
        else:
            for name in (dep.model, dep.upstream_model, reported):
                if name and self.book.lookup(name, dep.provider)[0] is not None:
                    found = (self.book, name, dep.provider)
                    break
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[key] = found
        return found

    def cost_of(self, dep: Deployment, reported: str | None, tokens: Tokens) -> tuple[Decimal | None, str | None]:
        found = self._resolve(dep, reported)
        if found is None:
            return None, None
        book, name, provider = found
        w5 = tokens.cache_write_5m_tokens
        w1 = tokens.cache_write_1h_tokens
        if w5 is None and w1 is None:   # split unknown: Anthropic's default 5-minute cache
            w5, w1 = tokens.cache_write_tokens, 0
        usage = Usage(input_tokens=tokens.input_tokens, output_tokens=tokens.output_tokens,
                      cache_read_tokens=tokens.cache_read_tokens,
                      cache_write_5m_tokens=w5 or 0, cache_write_1h_tokens=w1 or 0)
        cost, source = book.cost(name, usage, provider)
        if book is not self.book and source == "override":
            source = "config"
        return cost, source
