"""One error mapping for every llmlab route: OpenAI's shape, whatever went wrong.

    {"error": {"message": "...", "type": "invalid_request_error", "param": "model", "code": "..."}}

A :class:`~llmlab.errors.ProxyError` keeps its status, type, param and code; tornado's
``HTTPError`` (403 from authentication, 404, 405) keeps its status; anything else is a 500 whose
message names no internals (the traceback goes to the server log).
"""

from __future__ import annotations

import json

from jupyter_server.base.handlers import APIHandler
from tornado.web import HTTPError

from ..errors import ProxyError
from ..proxy.backends import error_type_for

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def error_body(err: ProxyError) -> bytes:
    return _dumps({"error": {"message": err.message, "type": err.error_type,
                             "param": err.param, "code": err.code}}).encode()


def as_proxy_error(exc: BaseException | None, status: int) -> ProxyError:
    if isinstance(exc, ProxyError):
        return exc
    if isinstance(exc, HTTPError) or exc is None:
        message = ""
        if isinstance(exc, HTTPError):
            status = exc.status_code
            message = exc.log_message or exc.reason or ""
            if exc.log_message and exc.args:
                try:
                    message = exc.log_message % exc.args
                except (TypeError, ValueError):
                    pass
        if status == 403 and not message:
            message = ("Forbidden: send the Jupyter server's token as 'Authorization: Bearer "
                       "<token>' (the openai client's api_key).")
        return ProxyError(message or f"HTTP {status}", status=status,
                          error_type=error_type_for(status))
    return ProxyError("internal error in the llmlab proxy; see the server log", status=500,
                      error_type="api_error", code="internal_error")


class LLMLabHandler(APIHandler):
    """Base of every llmlab handler."""

    @property
    def service(self):
        return self.settings["llmlab_proxy"]

    def set_secure_cookie(self, name, value, *args, **kwargs):
        # jupyter_server mints a signed login cookie for every token-authenticated request. API
        # clients send their token every time and keep no cookies, so for them it is pure cost
        # (an HMAC per call); browsers (no Authorization header) still get theirs.
        if "Authorization" in self.request.headers and \
                name == self.identity_provider.get_cookie_name(self):
            return
        return super().set_secure_cookie(name, value, *args, **kwargs)

    def write_openai_error(self, err: ProxyError, headers: dict[str, str] | None = None) -> None:
        self.set_status(err.status)
        for k, v in (headers or {}).items():
            self.set_header(k, v)
        self.finish(error_body(err))

    def write_error(self, status_code: int, **kwargs) -> None:
        exc_info = kwargs.get("exc_info")
        err = as_proxy_error(exc_info[1] if exc_info else None, status_code)
        self.set_header("Content-Type", "application/json")
        self.finish(error_body(err))
