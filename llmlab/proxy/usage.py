"""Token counts from an OpenAI-shaped ``usage`` object, made additive (DESIGN §3).

OpenAI's ``prompt_tokens`` includes the cached part (``prompt_tokens_details.cached_tokens``);
litellm's Anthropic translation also folds cache reads and writes into ``prompt_tokens`` and
reports them as ``cache_read_input_tokens`` / ``cache_creation_input_tokens``. Stored columns
keep them apart: ``input_tokens`` is uncached input only, so every sum is honest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Tokens:
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cache_write_5m_tokens: int | None
    cache_write_1h_tokens: int | None
    reasoning_tokens: int | None

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens + self.output_tokens


def _int(v: Any) -> int | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return None


def _obj(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def tokens_from_usage(usage: Any) -> Tokens | None:
    """Additive tokens of an OpenAI-shaped usage dict; None when it reports nothing usable."""
    if not isinstance(usage, dict):
        return None
    prompt = _int(usage.get("prompt_tokens"))
    if prompt is None:
        prompt = _int(usage.get("input_tokens"))
    completion = _int(usage.get("completion_tokens"))
    if completion is None:
        completion = _int(usage.get("output_tokens"))
    if prompt is None and completion is None:
        return None
    prompt = prompt or 0
    completion = completion or 0
    ptd = _obj(usage.get("prompt_tokens_details"))
    ctd = _obj(usage.get("completion_tokens_details"))
    cache_read = (_int(ptd.get("cached_tokens")) or _int(usage.get("cache_read_input_tokens"))
                  or _int(usage.get("prompt_cache_hit_tokens")) or 0)   # the last: DeepSeek
    cache_write = (_int(ptd.get("cache_creation_tokens"))
                   or _int(usage.get("cache_creation_input_tokens")) or 0)
    split = _obj(usage.get("cache_creation_token_details")) or _obj(ptd.get("cache_creation_token_details"))
    w5 = _int(split.get("ephemeral_5m_input_tokens"))
    w1 = _int(split.get("ephemeral_1h_input_tokens"))
    if w5 is None and w1 is None:
        w5 = w1 = None
    else:
        w5, w1 = w5 or 0, w1 or 0
    return Tokens(
        input_tokens=max(prompt - cache_read - cache_write, 0),
        output_tokens=completion,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        cache_write_5m_tokens=w5,
        cache_write_1h_tokens=w1,
        reasoning_tokens=_int(ctd.get("reasoning_tokens")),
    )
