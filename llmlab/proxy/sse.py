"""Server-sent events between the upstream and the client.

:class:`SSEFilter` takes the upstream's bytes as they arrive and returns the complete events to
forward at once. It looks inside an event only when it must: the usage chunk (found with a byte
search, parsed only then), the first chunk (for the model name), an ``error`` event, and every
chunk when bodies are stored. ``[DONE]`` is held back so the call is journaled before the client
sees the end of the stream.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .bodies import StreamAssembler

DONE_EVENT = b"data: [DONE]\n\n"
_USAGE_OBJECT = re.compile(rb'"usage"\s*:\s*\{')
_ERROR_EVENT = re.compile(rb'^\{\s*"error"\s*:')


def sse_event(payload: dict | bytes | str) -> bytes:
    if isinstance(payload, dict):
        payload = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    if isinstance(payload, str):
        payload = payload.encode()
    return b"data: " + payload + b"\n\n"


class SSEFilter:
    def __init__(self, *, keep_usage_chunk: bool, assemble: bool = False):
        self.keep_usage_chunk = keep_usage_chunk
        self.assembler = StreamAssembler() if assemble else None
        self.usage: dict | None = None
        self.model: str | None = None
        self.error: dict | None = None
        self.done = False
        self.events = 0
        self._buf = b""

    def feed(self, data: bytes) -> bytes:
        """Bytes to forward now (whole events only); the rest waits for more data."""
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        buf = self._buf + data if self._buf else data
        if b"\n\n" not in buf:
            self._buf = buf
            return b""
        head, _, self._buf = buf.rpartition(b"\n\n")
        out = []
        for event in head.split(b"\n\n"):
            kept = self._event(event)
            if kept:
                out.append(kept)
        return b"".join(out)

    def end(self) -> bytes:
        """The upstream finished: a last event without its blank line still counts."""
        rest, self._buf = self._buf.strip(), b""
        return self._event(rest) if rest else b""

    def _event(self, event: bytes) -> bytes:
        data = _data_of(event)
        if data is None:
            return event + b"\n\n" if event.strip() else b""  # comments, keep-alives: forwarded
        if data == b"[DONE]":
            self.done = True
            return b""
        self.events += 1
        parsed: Any = None
        if self.assembler is not None or self.model is None:
            parsed = _loads(data)
            if self.model is None and isinstance(parsed, dict):
                self.model = parsed.get("model") or None
            if self.assembler is not None:
                self.assembler.feed(parsed)
        if _USAGE_OBJECT.search(data):
            if parsed is None:
                parsed = _loads(data)
            if isinstance(parsed, dict) and isinstance(parsed.get("usage"), dict):
                self.usage = parsed["usage"]
                if not self.keep_usage_chunk and _carries_nothing_else(parsed):
                    return b""
        elif _ERROR_EVENT.match(data):
            parsed = _loads(data) if parsed is None else parsed
            if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
                self.error = parsed["error"]
        return b"data: " + data + b"\n\n"


def _carries_nothing_else(chunk: dict) -> bool:
    """A usage-only chunk: no choices, or only empty deltas (litellm's shape)."""
    for choice in chunk.get("choices") or []:
        if not isinstance(choice, dict) or choice.get("delta") or choice.get("finish_reason"):
            return False
    return True


def _data_of(event: bytes) -> bytes | None:
    if event.startswith(b"data:") and b"\n" not in event:
        return event[5:].strip()
    lines = [ln[5:].strip() for ln in event.split(b"\n") if ln.startswith(b"data:")]
    return b"\n".join(lines) if lines else None


def _loads(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None
