"""A stored call's request and response bodies as a conversation: who said what, which tools
were called. Pure functions over the JSON the proxy stores (OpenAI chat shape, with a few
Anthropic-shaped fields tolerated), used by the request viewer.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ToolCall:
    name: str
    arguments: str
    id: str | None = None


@dataclass
class Message:
    role: str                   # system, user, assistant, tool, ...
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    name: str | None = None     # a tool message's tool (or a named participant)
    tool_call_id: str | None = None


def messages(request_body: Any, response_body: Any) -> list[Message]:
    """The request's messages followed by the reply, in order."""
    out: list[Message] = []
    req = request_body if isinstance(request_body, dict) else {}
    if isinstance(req.get("system"), (str, list)):  # Anthropic keeps the system prompt apart
        out.append(Message("system", _text(req["system"])))
    for m in req.get("messages") or []:
        if isinstance(m, dict):
            out.append(_message(m))
    if "input" in req and not req.get("messages"):  # embeddings
        inputs = req["input"] if isinstance(req["input"], list) else [req["input"]]
        out.extend(Message("input", _text(i)) for i in inputs)
    out.extend(_reply(response_body))
    return out


def _message(m: dict) -> Message:
    calls = [_tool_call(c) for c in m.get("tool_calls") or [] if isinstance(c, dict)]
    text = _text(m.get("content"))
    if isinstance(m.get("content"), list):  # Anthropic tool_use blocks inside content
        calls += [ToolCall(b.get("name", "?"), _dump(b.get("input", {})), b.get("id"))
                  for b in m["content"] if isinstance(b, dict) and b.get("type") == "tool_use"]
    return Message(str(m.get("role", "?")), text, calls, m.get("name"), m.get("tool_call_id"))


def _reply(body: Any) -> list[Message]:
    if not isinstance(body, dict):
        return []
    if isinstance(body.get("choices"), list):
        out = []
        for choice in body["choices"]:
            msg = choice.get("message") or choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(msg, dict):
                out.append(_message({"role": "assistant", **msg}))
        return out
    if body.get("type") == "message" or (body.get("role") == "assistant" and "content" in body):
        return [_message({"role": "assistant", **body})]
    if isinstance(body.get("data"), list) and body.get("object") == "list":
        return [Message("assistant", f"{len(body['data'])} embedding vector(s)")]
    return []


def _tool_call(c: dict) -> ToolCall:
    fn = c.get("function") if isinstance(c.get("function"), dict) else {}
    return ToolCall(str(fn.get("name") or c.get("name") or "?"),
                    _pretty_args(fn.get("arguments", c.get("arguments", ""))), c.get("id"))


def _pretty_args(args: Any) -> str:
    if isinstance(args, str):
        try:
            return json.dumps(json.loads(args), indent=2, ensure_ascii=False)
        except ValueError:
            return args
    return _dump(args)


def _dump(v: Any) -> str:
    return json.dumps(v, indent=2, ensure_ascii=False)


def _text(content: Any) -> str:
    """Plain text of a message's content (a string or a list of typed parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, str):
                parts.append(p)
            elif isinstance(p, dict):
                kind = p.get("type")
                if kind in ("text", "input_text", "output_text") or "text" in p:
                    parts.append(str(p.get("text", "")))
                elif kind in ("image_url", "image", "input_image"):
                    parts.append("[image]")
                elif kind == "tool_result":
                    parts.append(_text(p.get("content")))
                elif kind not in ("tool_use",):
                    parts.append(f"[{kind}]")
        return "\n".join(x for x in parts if x)
    return _dump(content)


def as_xml(msgs: list[Message]) -> str:
    """The conversation with XML-tagged roles, ready to paste into a prompt::

        <system>You are ...</system>
        <user>Summarise ...</user>
        <assistant>...</assistant>
    """
    blocks = []
    for m in msgs:
        attrs = "".join(f' {k}="{html.escape(v, quote=True)}"'
                        for k, v in (("name", m.name), ("tool_call_id", m.tool_call_id)) if v)
        inner = [m.text] if m.text else []
        for c in m.tool_calls:
            cid = f' id="{html.escape(c.id, quote=True)}"' if c.id else ""
            inner.append(f'<tool_call name="{html.escape(c.name, quote=True)}"{cid}>\n{c.arguments}\n</tool_call>')
        blocks.append(f"<{_tag(m.role)}{attrs}>\n" + "\n".join(inner) + f"\n</{_tag(m.role)}>")
    return "\n".join(blocks)


def _tag(role: str) -> str:
    clean = "".join(ch for ch in role.lower() if ch.isalnum() or ch in "-_")
    return clean or "message"
