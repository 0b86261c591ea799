"""Optional: an alert's one-liner written by a model, through this server's own proxy.

Off unless ``LLMLabApp.alert_message_model`` names a model. The call goes through the proxy's
HTTP route like any client's (so it is routed, priced and recorded, under the project
``llmlab-alerts``), with the server's own token. Any failure, or no answer within the
dispatcher's ``message_timeout``, and the webhook gets the plain text instead.
"""

from __future__ import annotations

from typing import Callable

import aiohttp
import yarl

from .alerts import Alert, MessageWriter

ALERTS_PROJECT = "llmlab-alerts"
PROMPT = ("Write one short, witty sentence (at most 25 words, no emoji, no hashtags) telling a "
          "team that this LLM budget alert fired. Do not invent numbers.\nAlert: {text}")


def proxy_message_writer(*, chat_url: str | Callable[[], str], token: str, model: str,
                         max_tokens: int = 80) -> MessageWriter:
    """A writer POSTing to ``chat_url`` (``{server}{base_url}llmlab/v1/chat/completions``; a
    callable is asked at each alert, since the server knows its port only once it listens)."""
    headers = {"Content-Type": "application/json", "X-LLMLab-Project": ALERTS_PROJECT}
    if token:
        headers["Authorization"] = f"Bearer {token}"

    async def write(alert: Alert) -> str:
        body = {"model": model, "max_tokens": max_tokens,
                "messages": [{"role": "user", "content": PROMPT.format(text=alert.text())}]}
        # A session per alert: alerts are rare, and this keeps no socket open between them.
        # encoded=True: yarl would otherwise decode the base_url's escapes (/a%40b/ -> /a@b/),
        # and tornado routes the escaped form.
        url = yarl.URL(chat_url() if callable(chat_url) else chat_url, encoded=True)
        async with aiohttp.ClientSession() as session:
            async with session.post(url, json=body, headers=headers) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"the proxy answered HTTP {resp.status}")
                data = await resp.json(content_type=None)
        return str(data["choices"][0]["message"]["content"] or "")

    return write
