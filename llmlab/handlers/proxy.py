"""OpenAI's routes: ``v1/chat/completions`` (streamed or not), ``v1/embeddings``, ``v1/models``.

Every call is journaled exactly once, before its response completes, whatever happens: bad
input, unknown model, upstream error, timeout, reset, or a client that leaves mid-stream.
"""

from __future__ import annotations

import asyncio
import time

import tornado.web
from tornado.iostream import StreamClosedError

from ..errors import ProxyError, UpstreamError
from ..proxy.backends import CHAT, EMBEDDINGS
from ..proxy.call import (
    CLIENT_CLOSED, Call, apply_body_attribution, attribution_from_headers, llmlab_headers,
)
from ..proxy.service import proxy_error_from
from ..proxy.sse import DONE_EVENT, SSEFilter, sse_event
from ..proxy.validation import check_chat, check_embeddings, parse_json_body
from .base import LLMLabHandler, access_log_wanted, error_body
from .keyauth import VirtualKeyAuthMixin

HEADER_OVERHEAD = "X-LLMLab-Overhead-Ms"
HEADER_REQUEST_ID = "X-LLMLab-Request-Id"


class ProxyCallFlow:
    """A proxied call from request to recorded response, over the part of tornado's
    RequestHandler API it needs (``request``, ``service``, ``log``, ``llmlab_key``,
    ``set_status``, ``set_header``, ``clear_header``, ``write``, ``flush``, ``finish``,
    ``write_openai_error``). Two classes provide it: :class:`ProxyHandler` (Jupyter's handler
    stack) and :class:`~llmlab.handlers.lean.LeanExchange` (the server-token fast path)."""

    endpoint = CHAT
    llmlab_key = None

    def _start_flow(self) -> None:
        self._labels: dict[str, str] = {}
        self._task: asyncio.Task | None = None
        self._client_gone = False

    def on_connection_close(self):
        # The client left: stop waiting on the upstream (its stream is closed in the handler).
        self._client_gone = True
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def _new_call(self) -> Call:
        # Arrival = when tornado read the request line, so auth time counts as overhead.
        t0 = time.perf_counter() - max(0.0, time.time() - self.request._start_time)
        self._labels = llmlab_headers(self.request.headers)
        call = Call("/v1/" + self.endpoint,
                    attribution_from_headers(self._labels, self.service.default_project), t0)
        if self.llmlab_key is not None:   # authenticated by a virtual key (keyauth.py)
            call.key_id = self.llmlab_key.key_id
        return call

    def _check(self, body: dict) -> tuple[str, bool, bool]:
        if self.endpoint == EMBEDDINGS:
            return check_embeddings(body), False, False
        return check_chat(body)

    async def _handle(self) -> None:
        svc = self.service
        call = self._new_call()
        self._task = asyncio.current_task()
        try:
            body = parse_json_body(self.request.body, svc.max_body_bytes)
            if isinstance(body.get("model"), str):
                call.model_requested = body["model"]
            model, stream, include_usage = self._check(body)
            call.stream = stream
            apply_body_attribution(call.attribution, self._labels, body, svc.default_project)
            if svc.body_mode != "off":
                call.request_body = body
            call.route = svc.resolve(model, self.endpoint)
            call.extra = {"body": body}   # hooks estimate cost from it (policy/hook.py)
            await svc.before_forward(call)
            if "metadata" in body:   # llmlab's attribution, not the provider's business
                body = {k: v for k, v in body.items() if k != "metadata"}
            backend = svc.backend_for(call.route)
            if stream:
                await self._stream(call, backend, body, include_usage)
            else:
                await self._complete(call, backend, body)
        except asyncio.CancelledError:
            if not self._client_gone:
                raise
            self._client_left(call, None)
        except Exception as exc:  # noqa: BLE001 - every failure is answered and recorded
            if self._client_gone:
                return self._client_left(call, None)
            err = proxy_error_from(exc)
            if not isinstance(exc, ProxyError):
                self.log.exception("llmlab: unexpected error in %s", self.request.path)
            call.fail(err, svc.scrub)
            call.t_end = time.perf_counter()
            svc.record(call)
            self._send_error(call, err)
        finally:
            self._task = None

    def _common_headers(self, call: Call, extra: dict | None = None) -> None:
        if extra:
            for k, v in extra.items():
                self.set_header(k, v)
        self.set_header(HEADER_REQUEST_ID, call.request_id)
        self.set_header(HEADER_OVERHEAD, f"{call.overhead_ms():.3f}")

    def _send_error(self, call: Call, err: ProxyError) -> None:
        self._common_headers(call, getattr(err, "headers", None))
        self.write_openai_error(err)

    def _client_left(self, call: Call, sse: SSEFilter | None) -> None:
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        call.upstream_end()
        call.status = CLIENT_CLOSED
        call.error_type = "client_disconnected"
        events = sse.events if sse else 0
        call.error_message = f"the client closed the connection after {events} streamed events"
        if sse is not None:
            self._take_stream_results(call, sse)
        call.t_end = time.perf_counter()
        self.service.record(call)

    def _prepare_record_meanwhile(self, call: Call) -> None:
        """Have the request's part of the usage record encoded while the upstream works, so
        that less is left to do between its answer and ours. Two loop steps on: by then the
        request is on its way (aiohttp sends a body from a task of its own on Python 3.11).
        Whenever it runs, the record comes out the same (Call.journal_line)."""
        loop = asyncio.get_running_loop()
        loop.call_soon(loop.call_soon, call.prepare_record, self.service.body_mode)

    async def _complete(self, call: Call, backend, body: dict) -> None:
        self._prepare_record_meanwhile(call)
        call.upstream_begin()
        try:
            reply = await backend.complete(call, call.route.deployment, self.endpoint, body)
        finally:
            call.upstream_end()
        data = reply.data
        if isinstance(data, dict):
            call.usage = data.get("usage")
            call.reported_model = data.get("model") or None
            if self.service.body_mode != "off":
                call.response_body = data
        call.status = reply.status
        call.t_end = time.perf_counter()
        self.service.record(call)
        self._common_headers(call, reply.headers)
        self.set_status(reply.status)
        self.finish(reply.body)

    @staticmethod
    def _take_stream_results(call: Call, sse: SSEFilter) -> None:
        call.usage = sse.usage
        call.reported_model = sse.model
        if sse.assembler is not None:
            call.response_body = sse.assembler.body()

    async def _stream(self, call: Call, backend, body: dict, include_usage: bool) -> None:
        svc = self.service
        sse = SSEFilter(keep_usage_chunk=include_usage, assemble=svc.body_mode != "off")
        self._prepare_record_meanwhile(call)
        call.upstream_begin()
        try:
            upstream = await backend.stream(call, call.route.deployment, self.endpoint, body)
        finally:
            call.upstream_end()
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        sent_headers = False
        failure: ProxyError | None = None
        try:
            if self._client_gone:
                raise asyncio.CancelledError
            call.upstream_begin()
            async for data in upstream.chunks():
                call.upstream_end()
                out = sse.feed(data)
                if out:
                    if not sent_headers:
                        call.ttft_s = time.perf_counter() - call.t0
                        self._common_headers(call, upstream.headers)
                        sent_headers = True
                    self.write(out)
                    await self.flush()
                call.upstream_begin()
            call.upstream_end()
            tail = sse.end()
            if tail:
                self.write(tail)
        except (asyncio.CancelledError, StreamClosedError) as exc:
            self._task = None   # no second cancellation while we clean up
            await upstream.close()
            if isinstance(exc, asyncio.CancelledError) and not self._client_gone:
                raise   # the server is shutting down, not the client leaving
            self._client_gone = True
            return self._client_left(call, sse)
        except UpstreamError as exc:
            failure = exc
        await upstream.close()
        self._take_stream_results(call, sse)
        if failure is None and sse.error is not None:
            e = sse.error
            failure = UpstreamError(svc.scrub(str(e.get("message") or "upstream error")),
                                    status=502, error_type=str(e.get("type") or "upstream_error"),
                                    code=None if e.get("code") is None else str(e.get("code")))
            failure.already_sent = True
        if failure is not None:
            call.fail(failure, svc.scrub)
            call.t_end = time.perf_counter()
            svc.record(call)
            if not sent_headers:
                self.clear_header("Content-Type")
                self.clear_header("Cache-Control")
                return self._send_error(call, failure)
            if not getattr(failure, "already_sent", False):
                self.write(sse_event(error_body(failure)))
            return self._finish_stream(call)
        call.t_end = time.perf_counter()
        svc.record(call)
        if not sent_headers:
            self._common_headers(call, upstream.headers)
        self.write(DONE_EVENT)
        self._finish_stream(call)

    def _finish_stream(self, call: Call) -> None:
        self._task = None
        try:
            self.finish(set_content_type="text/event-stream")
        except StreamClosedError:
            pass


class ProxyHandler(ProxyCallFlow, VirtualKeyAuthMixin, LLMLabHandler):
    """The proxy routes through Jupyter's handler stack: every credential Jupyter knows,
    virtual keys, CORS. API calls with the server's token take handlers/lean.py instead."""

    def initialize(self):
        self._start_flow()

    def _log(self) -> None:
        if access_log_wanted(self.get_status(), self.log):
            super()._log()


class ChatCompletionsHandler(ProxyHandler):
    endpoint = CHAT

    @tornado.web.authenticated
    async def post(self):
        await self._handle()


class EmbeddingsHandler(ProxyHandler):
    endpoint = EMBEDDINGS

    @tornado.web.authenticated
    async def post(self):
        await self._handle()


def _model_object(name: str, dep) -> dict:
    return {"id": name, "object": "model", "created": 0, "owned_by": dep.provider or "llmlab"}


class ModelsHandler(VirtualKeyAuthMixin, LLMLabHandler):
    @tornado.web.authenticated
    def get(self):
        data = [_model_object(name, dep) for name, dep in self.service.router.listed()]
        self.finish({"object": "list", "data": data})


class ModelHandler(VirtualKeyAuthMixin, LLMLabHandler):
    @tornado.web.authenticated
    def get(self, name: str):
        for listed, dep in self.service.router.listed():
            if listed == name:
                return self.finish(_model_object(name, dep))
        self.write_openai_error(ProxyError(f"The model `{name}` does not exist on this proxy.",
                                           status=404, error_type="invalid_request_error",
                                           param="model", code="model_not_found"))
