"""One error mapping for every llmlab route: OpenAI's shape, whatever went wrong.

    {"error": {"message": "...", "type": "invalid_request_error", "param": "model", "code": "..."}}

A :class:`~llmlab.errors.ProxyError` keeps its status, type, param and code; tornado's
``HTTPError`` (403 from authentication, 404, 405) keeps its status; anything else is a 500 whose
message names no internals (the traceback goes to the server log).
"""

from __future__ import annotations

import hmac
import json
import logging
import re

from jupyter_server.auth.identity import IdentityProvider, PasswordIdentityProvider
from jupyter_server import CallContext
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from tornado.web import HTTPError

from ..errors import ProxyError
from ..proxy.backends import error_type_for

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def logs_debug(logger: logging.Logger) -> bool:
    """Whether a DEBUG record from ``logger`` would reach any handler.

    ``logger.isEnabledFor(DEBUG)`` is not the answer for Jupyter's log: traitlets sets the
    ``ServerApp`` logger itself to DEBUG and filters at its handlers (``log_level`` is the
    console handler's level), so the logger is "enabled" for DEBUG whatever the server logs."""
    if not logger.isEnabledFor(logging.DEBUG):
        return False
    current: logging.Logger | None = logger
    while current is not None:
        if any(handler.level <= logging.DEBUG for handler in current.handlers):
            return True
        if not current.propagate:
            return False
        current = current.parent
    return False


def access_log_wanted(status: int, logger: logging.Logger) -> bool:
    """Whether a proxied call goes to Jupyter's access log: failures always, successes only when
    the server logs at DEBUG level. That log formats a line and observes a Prometheus histogram
    for every request (~10% of a proxied call's CPU); llmlab's api/metrics counts every call."""
    return status >= 400 or logs_debug(logger)


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


_AUTH_HEADER = re.compile(r"(token|bearer)\s+(.+)", re.IGNORECASE)   # jupyter_server's own rule
# jupyter_server's own providers, whose token check the fast path repeats (the default is
# PasswordIdentityProvider, which adds password logins through cookies only).
_TOKEN_PROVIDERS = (IdentityProvider, PasswordIdentityProvider)
_MAX_REMEMBERED_HOSTS = 64


def _may_be_socket_path(host: str) -> bool:
    return "/" in host or "%2f" in host.lower()


def bears_the_server_token(request, identity_provider) -> bool:
    """A cookie-less API call carrying the server's own token, under one of jupyter_server's
    own identity providers. Any other provider (JupyterHub's, a custom one), a cookie or a
    ``?token=`` goes the full way through ``JupyterHandler.prepare``."""
    if type(identity_provider) not in _TOKEN_PROVIDERS:
        return False
    headers = request.headers
    if "Cookie" in headers or "token" in request.query_arguments:
        return False
    token = identity_provider.token
    match = _AUTH_HEADER.match(headers.get("Authorization", ""))
    return bool(token and match
                and hmac.compare_digest(match.group(2).encode(), token.encode()))


def host_allowed(handler) -> bool:
    """Jupyter's DNS-rebinding check (``JupyterHandler.check_host``) of ``handler``'s Host
    header, remembered for allowed names: the verdict depends on settings fixed at startup,
    except for a UNIX socket path (the file may come and go), which is checked every time.
    ``handler`` needs ``settings``, ``request`` and ``log``."""
    allowed = handler.settings.setdefault("llmlab_allowed_hosts", set())
    host = handler.request.host
    if host in allowed:
        return True
    ok = JupyterHandler.check_host(handler)
    if ok and len(allowed) < _MAX_REMEMBERED_HOSTS and not _may_be_socket_path(host):
        allowed.add(host)
    return ok


class LLMLabHandler(APIHandler):
    """Base of every llmlab handler."""

    @property
    def service(self):
        return self.settings["llmlab_proxy"]

    async def prepare(self):
        if self._bears_the_server_token():
            return self._prepare_token_request()
        return await super().prepare()

    def _bears_the_server_token(self) -> bool:
        return bears_the_server_token(self.request, self.identity_provider)

    def _prepare_token_request(self) -> None:
        self.check_request_host()
        # What JupyterHandler.prepare and APIHandler.prepare do for such a call, without
        # minting a new anonymous user (a uuid and a log line) each time: about 6% of a proxied
        # call's CPU (benchmarks/RESULTS.md, Proxy). tests/e2e/test_proxy_inprocess.py pins it.
        user = self.settings.get("llmlab_token_user")
        if user is None:
            user = self.settings["llmlab_token_user"] = \
                self.identity_provider.generate_anonymous_user(self)
        self.accept_header_credential(user)

    @property
    def content_security_policy(self) -> str:
        # Jupyter joins this string on every request (part of ~20 µs of default headers); it
        # depends on settings only, so it is built once per server.
        csp = self.settings.get("llmlab_csp")
        if csp is None:
            csp = self.settings["llmlab_csp"] = super().content_security_policy
        return csp

    def check_host(self) -> bool:
        return host_allowed(self)

    def check_request_host(self) -> None:
        """Jupyter's DNS-rebinding check, first thing for any credential."""
        CallContext.set(CallContext.JUPYTER_HANDLER, self)
        if not self.check_host():
            self.current_user = self._jupyter_current_user = None
            raise HTTPError(403)

    def accept_header_credential(self, user) -> None:
        """Log ``user`` in for this request as Jupyter does for a token in a header (no cookie,
        so no XSRF check), with its CORS and origin checks. Call after check_request_host()."""
        self._token_authenticated = True
        self.current_user = self._jupyter_current_user = user
        self.set_cors_headers()
        if not self.check_origin():
            raise HTTPError(404)

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
        self.set_status(err.status)   # a ProxyError raised on purpose keeps its own status
        self.set_header("Content-Type", "application/json")
        self.finish(error_body(err))
