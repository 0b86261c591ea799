"""What every backend (direct HTTP, litellm, offline) hands back to the handler.

    await backend.complete(call, deployment, endpoint, body) -> Reply
    await backend.stream(call, deployment, endpoint, body)   -> UpstreamStream

``endpoint`` is ``"chat/completions"`` or ``"embeddings"``. A non-2xx answer from the provider
is raised as :class:`~llmlab.errors.UpstreamError` carrying the provider's status, message,
type, param and code, which the handler passes through in OpenAI's error shape.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable

from ..errors import UpstreamError

CHAT = "chat/completions"
EMBEDDINGS = "embeddings"
# Provider response headers worth handing on (request ids, rate-limit state).
PASSTHROUGH_HEADER_PREFIXES = ("x-request-id", "openai-", "x-ratelimit-", "retry-after", "anthropic-")
_TYPE_BY_STATUS = {400: "invalid_request_error", 401: "authentication_error",
                   403: "permission_error", 404: "not_found_error", 408: "timeout",
                   409: "conflict_error", 413: "invalid_request_error", 422: "invalid_request_error",
                   429: "rate_limit_error"}


@dataclass
class Reply:
    """A complete (non-streamed) answer: the bytes to send and the parsed JSON."""

    status: int
    body: bytes
    data: Any
    headers: dict[str, str] = field(default_factory=dict)


class UpstreamStream:
    """A streamed answer. ``chunks()`` yields the provider's SSE bytes as they arrive."""

    headers: dict[str, str] = {}

    def chunks(self) -> AsyncIterator[bytes]:
        raise NotImplementedError

    async def close(self) -> None:
        """Stop reading and release the connection (the client went away, or we are done)."""


def error_type_for(status: int) -> str:
    return _TYPE_BY_STATUS.get(status, "api_error" if status >= 500 else "invalid_request_error")


def upstream_status_error(status: int, body: bytes | str, scrub: Callable[[str], str],
                          reason: str = "") -> UpstreamError:
    """The provider answered ``status`` >= 400: its error, in OpenAI's terms, keys scrubbed."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = None
    message = etype = param = code = None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            message, etype, param, code = (err.get("message"), err.get("type"), err.get("param"),
                                           err.get("code"))
        elif isinstance(err, str):
            message = err
        elif isinstance(data.get("message"), str):   # vLLM and friends: {"object": "error", ...}
            message, etype, code = data["message"], data.get("type"), data.get("code")
    if not message:
        message = text.strip()[:1000] or reason or f"upstream answered HTTP {status}"
    return UpstreamError(
        scrub(str(message)), status=status, error_type=str(etype) if etype else error_type_for(status),
        param=None if param is None else str(param), code=None if code is None else scrub(str(code)))


def passthrough_headers(headers) -> dict[str, str]:
    out = {}
    for k, v in headers.items():
        lk = k.lower()
        if lk.startswith(PASSTHROUGH_HEADER_PREFIXES):
            out[k] = v
    return out
