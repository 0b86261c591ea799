"""Stored request/response bodies: off, on, or redacted (``LLMLabApp.store_bodies``).

``redacted`` keeps a conversation's structure (roles, message count, tool names, finish reasons,
usage) and replaces every piece of content with ``"[redacted: N chars]"``, so a team can see how
calls are shaped without storing what was said. Embedding vectors are never stored: they are
replaced by their dimension count.
"""

from __future__ import annotations

from typing import Any

BODY_MODES = ("off", "on", "redacted")
# Keys whose string values describe structure, not content.
_STRUCTURAL = frozenset({
    "role", "type", "name", "tool_call_id", "id", "index", "finish_reason", "object", "model",
    "detail", "format", "refusal_type",
})
# Request keys that hold content; everything else (model, temperature, tools...) is kept.
_CONTENT_KEYS = ("messages", "input", "prompt")


def redact(value: Any, key: str | None = None) -> Any:
    if isinstance(value, str):
        return value if key in _STRUCTURAL else f"[redacted: {len(value)} chars]"
    if isinstance(value, dict):
        return {k: redact(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, key) for v in value]
    return value


def request_body_for_storage(body: Any, mode: str) -> Any:
    if mode == "off" or body is None:
        return None
    if mode == "on" or not isinstance(body, dict):
        return body if mode == "on" else redact(body)
    return {k: (redact(v) if k in _CONTENT_KEYS else v) for k, v in body.items()}


def response_body_for_storage(body: Any, mode: str) -> Any:
    if mode == "off" or body is None:
        return None
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        body = {**body, "data": [_strip_vector(d) for d in body["data"]]}
    if mode == "on" or not isinstance(body, dict):
        return body
    return {k: (redact(v) if k == "choices" else v) for k, v in body.items()}


def _strip_vector(item: Any) -> Any:
    if isinstance(item, dict) and isinstance(item.get("embedding"), (list, str)):
        emb = item["embedding"]
        return {**item, "embedding": {"dimensions": len(emb)} if isinstance(emb, list) else {"base64_chars": len(emb)}}
    return item


class StreamAssembler:
    """Rebuilds a chat.completion body from streamed chunks (only when bodies are stored)."""

    def __init__(self) -> None:
        self.id = self.model = None
        self.created = None
        self.choices: dict[int, dict] = {}
        self.usage = None

    def feed(self, chunk: Any) -> None:
        if not isinstance(chunk, dict):
            return
        self.id = self.id or chunk.get("id")
        self.model = self.model or chunk.get("model")
        self.created = self.created or chunk.get("created")
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            slot = self.choices.setdefault(choice.get("index", 0), {
                "index": choice.get("index", 0), "message": {"role": "assistant", "content": ""},
                "finish_reason": None})
            delta = choice.get("delta") or {}
            msg = slot["message"]
            if delta.get("role"):
                msg["role"] = delta["role"]
            if isinstance(delta.get("content"), str):
                msg["content"] += delta["content"]
            for call in delta.get("tool_calls") or []:
                calls = msg.setdefault("tool_calls", [])
                i = call.get("index", len(calls))
                while len(calls) <= i:
                    calls.append({"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
                calls[i]["id"] = call.get("id") or calls[i]["id"]
                fn = call.get("function") or {}
                calls[i]["function"]["name"] += fn.get("name") or ""
                calls[i]["function"]["arguments"] += fn.get("arguments") or ""
            if choice.get("finish_reason"):
                slot["finish_reason"] = choice["finish_reason"]

    def body(self) -> dict:
        return {"id": self.id, "object": "chat.completion", "created": self.created,
                "model": self.model, "choices": [self.choices[k] for k in sorted(self.choices)],
                "usage": self.usage}
