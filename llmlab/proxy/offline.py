"""The built-in offline models: real answers through the real proxy, with no network and no key.

``llmlab/offline`` answers chat completions (streamed or not) with a short, deterministic reply
about what it received; ``llmlab/offline-embedding`` returns small deterministic unit vectors.
Token usage is estimated the way a tokenizer roughly counts English (about four characters a
token, a few tokens of overhead per message), so the first run shows plausible numbers.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
import uuid
from typing import Any, AsyncIterator

from .backends import EMBEDDINGS, Reply, UpstreamStream
from .config import Deployment

EMBEDDING_DIMENSIONS = 16
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4)) if text else 0


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _prompt_tokens(messages: list) -> int:
    return 3 + sum(4 + estimate_tokens(_text(m.get("content"))) for m in messages if isinstance(m, dict))


def reply_text(messages: list) -> str:
    last = next((_text(m.get("content")) for m in reversed(messages)
                 if isinstance(m, dict) and m.get("role") == "user"), "")
    words = len(" ".join(_text(m.get("content")) for m in messages if isinstance(m, dict)).split())
    quoted = last.strip().replace("\n", " ")
    if len(quoted) > 120:
        quoted = quoted[:117] + "..."
    return (f"This is llmlab's offline model: no network, no key, no cost. I received "
            f"{len(messages)} message(s), {words} words; you said: \"{quoted}\". Configure a real "
            f"model in config.yaml to get real answers.")


def _usage(prompt: int, completion: int) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0}}


def _vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    raw = [(b - 127.5) for b in digest[:EMBEDDING_DIMENSIONS]]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [round(x / norm, 6) for x in raw]


class OfflineBackend:
    name = "offline"

    async def complete(self, call, dep: Deployment, endpoint: str, body: dict) -> Reply:
        if endpoint == EMBEDDINGS:
            data = self._embeddings(dep, body)
        else:
            messages = body.get("messages") or []
            text = reply_text(messages)
            data = {
                "id": "chatcmpl-offline-" + uuid.uuid4().hex[:16], "object": "chat.completion",
                "created": int(time.time()), "model": dep.upstream_model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop"}],
                "usage": _usage(_prompt_tokens(messages), estimate_tokens(text)),
            }
        return Reply(200, _dumps(data).encode(), data)

    def _embeddings(self, dep: Deployment, body: dict) -> dict:
        inputs = body.get("input")
        items = [inputs] if isinstance(inputs, str) else list(inputs or [])
        texts = [x if isinstance(x, str) else " ".join(map(str, x)) if isinstance(x, list) else str(x)
                 for x in items]
        tokens = sum(estimate_tokens(t) for t in texts)
        return {"object": "list", "model": dep.upstream_model,
                "data": [{"object": "embedding", "index": i, "embedding": _vector(t)}
                         for i, t in enumerate(texts)],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    async def stream(self, call, dep: Deployment, endpoint: str, body: dict) -> UpstreamStream:
        return _OfflineStream(dep, body.get("messages") or [])


class _OfflineStream(UpstreamStream):
    def __init__(self, dep: Deployment, messages: list):
        self.dep = dep
        self.messages = messages

    async def chunks(self) -> AsyncIterator[bytes]:
        text = reply_text(self.messages)
        base = {"id": "chatcmpl-offline-" + uuid.uuid4().hex[:16], "object": "chat.completion.chunk",
                "created": int(time.time()), "model": self.dep.upstream_model}
        words = text.split(" ")
        for i, word in enumerate(words):
            piece = word if i == len(words) - 1 else word + " "
            delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
            yield b"data: " + _dumps({**base, "choices": [{"index": 0, "delta": delta,
                                                             "finish_reason": None}]}).encode() + b"\n\n"
            await asyncio.sleep(0)   # a real stream arrives in pieces; let others run between them
        yield b"data: " + _dumps({**base, "choices": [{"index": 0, "delta": {},
                                                         "finish_reason": "stop"}]}).encode() + b"\n\n"
        usage = _usage(_prompt_tokens(self.messages), estimate_tokens(text))
        yield b"data: " + _dumps({**base, "choices": [], "usage": usage}).encode() + b"\n\n"
        yield b"data: [DONE]\n\n"
