"""The proxy's two hot routes for API clients with the server's token, without RequestHandler.

Why: tornado's ``RequestHandler`` with Jupyter's additions (default headers, the token, host,
CORS and origin checks, the user, the access log) cost as much CPU per call as a whole bare
tornado + aiohttp pass-through, and sat on the latency path of every call (measured in
benchmarks/RESULTS.md, Proxy; docs/developers/proxy.md). Here the same call flow
(:class:`~llmlab.handlers.proxy.ProxyCallFlow`) writes to tornado's HTTP/1.1 connection
directly.

What takes this path: a POST to ``v1/chat/completions`` or ``v1/embeddings`` whose credential is
the server's own token in the ``Authorization`` header, checked as ``LLMLabHandler`` checks it
(jupyter_server's own identity providers, no cookie, no ``?token=``; constant-time compare), with
no ``Origin`` header (no CORS to answer) and a ``Host`` that passes Jupyter's DNS-rebinding check.
Anything else (a browser, a virtual key, JupyterHub's or another identity provider, a
cross-origin call, a wrong token, another method) is handed, untouched, to the regular handler
class, which answers it exactly as before. So the fast path can only accept what Jupyter would
accept, and never refuses anything itself.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time

from jupyter_server._tz import utcnow
from jupyter_server.base.handlers import log as jupyter_log
from jupyter_server.utils import url_path_join
from tornado import httputil
from tornado.routing import Rule, RuleRouter

from ..errors import ProxyError
from .base import access_log_wanted, bears_the_server_token, error_body, host_allowed
from .proxy import ProxyCallFlow

# Jupyter's Content-Security-Policy report path (jupyter_server.base.handlers.csp_report_uri).
_CSP_REPORT_PATH = "api/security/csp-report"
_running: set[asyncio.Task] = set()   # a task nobody references may be collected mid-call


class LeanRoute:
    """A tornado rule target for one proxy route (make one with :func:`lean_route`). tornado
    reads the body, then calls the target with the request (``_CallableAdapter``); the route's
    ``target_kwargs`` name the application."""

    handler_class: type = None   # the regular handler: every request not served here goes there

    def __init__(self, request: httputil.HTTPServerRequest, *, target_kwargs: dict,
                 path_args=(), path_kwargs=None):
        application = target_kwargs["application"]
        handler_class = self.handler_class
        exchange = LeanExchange(application, request, handler_class)
        if exchange.may_skip_the_handler():
            exchange.start()
        else:
            application.get_handler_delegate(request, handler_class, path_args=list(path_args),
                                             path_kwargs=path_kwargs or {}).execute()


def lean_route(handler_class: type) -> type:
    """The route class for ``handler_class``. Jupyter audits every route's methods for an
    authentication decorator; this one shows the handler's own (``@tornado.web.authenticated``),
    which is what runs for any request the fast path does not take, and the fast path itself
    runs only for a request bearing the server's token (``may_skip_the_handler``)."""
    methods = {m.lower(): getattr(handler_class, m.lower()) for m in handler_class.SUPPORTED_METHODS}
    return type(f"Lean{handler_class.__name__}", (LeanRoute,), {
        "handler_class": handler_class, "SUPPORTED_METHODS": handler_class.SUPPORTED_METHODS,
        "__module__": __name__, **methods})


def route_fast_paths_first(web_app) -> int:
    """Have tornado try the lean routes before every other rule; returns how many there are.

    Why: tornado tries an application's rules in order and an extension's come after Jupyter's
    ~80, so finding the chat route cost ~15 µs of every call (more than the fast path's token
    check). The rules are copied in front, under the same host matcher, and left where they
    were too (unreachable there for these paths, which nothing else serves). Idempotent."""
    rules = [rule for rule in web_app.default_router.rules
             if not isinstance(rule.target, _FastPathRouter)]
    front = []
    for host_rule in rules:
        if isinstance(host_rule.target, RuleRouter):
            lean = [rule for rule in host_rule.target.rules
                    if isinstance(rule.target, type) and issubclass(rule.target, LeanRoute)]
            if lean:
                front.append(Rule(host_rule.matcher, _FastPathRouter(lean)))
    web_app.default_router.rules[:] = front + rules
    return sum(len(rule.target.rules) for rule in front)


class _FastPathRouter(RuleRouter):
    """The lean routes, in front of the application's own rules."""


class LeanExchange(ProxyCallFlow):
    """One call on the fast path: the RequestHandler methods ProxyCallFlow uses, over the
    request's HTTP/1.1 connection."""

    def __init__(self, application, request: httputil.HTTPServerRequest, handler_class):
        self.settings = application.settings
        self.request = request
        self.endpoint = handler_class.endpoint
        self._status = 200
        self._headers: dict[str, str] = {}
        self._buffer: list[bytes] = []
        self._headers_sent = False
        self._finished = False
        self._start_flow()

    # -- what ProxyCallFlow reads ----------------------------------------------------------
    @property
    def service(self):
        return self.settings["llmlab_proxy"]

    @property
    def log(self) -> logging.Logger:
        return jupyter_log()

    @property
    def current_user(self):
        return self.settings.get("llmlab_token_user")

    def may_skip_the_handler(self) -> bool:
        request = self.request
        return (request.method == "POST" and "Origin" not in request.headers
                and self.settings.get("llmlab_proxy") is not None
                and bears_the_server_token(request, self.settings.get("identity_provider"))
                and host_allowed(self))

    def start(self) -> None:
        self.request.connection.set_close_callback(self.on_connection_close)
        task = asyncio.ensure_future(self._run())
        _running.add(task)
        task.add_done_callback(_running.discard)

    async def _run(self) -> None:
        try:
            await self._handle()
        except Exception:  # noqa: BLE001 - _handle answers its own errors; this is a last resort
            self.log.exception("llmlab: unexpected error in %s", self.request.path)
            if not self._headers_sent:
                self._status, self._headers, self._buffer = 500, {}, []
                self.finish(error_body(ProxyError(
                    "internal error in the llmlab proxy; see the server log", status=500,
                    error_type="api_error", code="internal_error")))
        finally:
            if not self._finished:   # the client left: end the exchange all the same
                self._finished = True
                try:
                    self.request.connection.finish()
                except Exception:  # noqa: BLE001 - the connection is gone; nothing to tell
                    pass

    # -- the response ------------------------------------------------------------------------
    def set_status(self, status: int) -> None:
        self._status = status

    def get_status(self) -> int:
        return self._status

    def set_header(self, name: str, value) -> None:
        self._headers[name] = str(value)

    def clear_header(self, name: str) -> None:
        self._headers.pop(name, None)

    def write(self, chunk: bytes | str) -> None:
        self._buffer.append(chunk.encode() if isinstance(chunk, str) else chunk)

    async def flush(self) -> None:
        """Send what was written; the first flush sends the headers too, without a length
        (chunked transfer: a stream)."""
        chunk = b"".join(self._buffer)
        self._buffer.clear()
        if not self._headers_sent:
            self._headers_sent = True
            await self.request.connection.write_headers(self._start_line(), self._all_headers(),
                                                        chunk or None)
        elif chunk:
            await self.request.connection.write(chunk)

    def finish(self, chunk: bytes | None = None, *, set_content_type: str = "application/json"):
        if self._finished:
            raise RuntimeError("finish() called twice")
        if chunk is not None:
            self.write(chunk)
        body = b"".join(self._buffer)
        self._buffer.clear()
        # On a connection the client closed, tornado's writes fail quietly (as for a handler).
        conn = self.request.connection
        if not self._headers_sent:
            self._headers["Content-Type"] = set_content_type
            self._headers["Content-Length"] = str(len(body))
            self._headers_sent = True
            conn.write_headers(self._start_line(), self._all_headers(), body)
        elif body:
            conn.write(body)
        conn.finish()
        self._finished = True
        self.request._finish_time = time.time()
        self._after_response()

    def write_openai_error(self, err: ProxyError, headers: dict[str, str] | None = None) -> None:
        self.set_status(err.status)
        for k, v in (headers or {}).items():
            self.set_header(k, v)
        self.finish(error_body(err))

    def _start_line(self) -> httputil.ResponseStartLine:
        return httputil.ResponseStartLine("HTTP/1.1", self._status,
                                          httputil.responses.get(self._status, "Unknown"))

    def _all_headers(self) -> httputil.HTTPHeaders:
        # The headers Jupyter's APIHandler sends with every answer, then the call's own.
        headers = httputil.HTTPHeaders({"Date": _http_date()})
        for k, v in _api_headers(self.settings):
            headers[k] = v
        for k, v in self._headers.items():
            headers[k] = v
        return headers

    def _after_response(self) -> None:
        # As APIHandler.finish: a proxied call is activity (idle culling must see it).
        if "no_track_activity" not in self.request.query_arguments:
            self.settings["api_last_activity"] = utcnow()
        # As ProxyHandler._log: Jupyter's access log (and its Prometheus histogram).
        if access_log_wanted(self._status, self.log):
            log_function = self.settings.get("log_function")
            if log_function is not None:
                log_function(self)


def _http_date() -> str:
    return _formatted_second(int(time.time()))


@functools.lru_cache(maxsize=1)
def _formatted_second(second: int) -> str:
    """The Date header, formatted once a second (it has a resolution of one)."""
    return httputil.format_timestamp(second)


def _api_headers(settings: dict) -> tuple[tuple[str, str], ...]:
    """The headers APIHandler adds to every answer; they depend on settings only (built once)."""
    headers = settings.get("llmlab_api_headers")
    if headers is None:
        merged = {"X-Content-Type-Options": "nosniff", **settings.get("headers", {}),
                  "Content-Security-Policy": api_content_security_policy(settings)}
        headers = settings["llmlab_api_headers"] = tuple(merged.items())
    return headers


def api_content_security_policy(settings: dict) -> str:
    """The Content-Security-Policy jupyter_server's APIHandler sends (built once per server)."""
    csp = settings.get("llmlab_csp")
    if csp is None:
        base = settings.get("headers", {}).get("Content-Security-Policy")
        if base is None:
            report = settings.get("csp_report_uri",
                                  url_path_join(settings.get("base_url", "/"), _CSP_REPORT_PATH))
            base = f"frame-ancestors 'self'; report-uri {report}"
        csp = settings["llmlab_csp"] = f"{base}; default-src 'none'"
    return csp
