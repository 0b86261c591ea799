"""A local LLM provider for tests and benchmarks: OpenAI-compatible, plus Anthropic Messages.

Listens on 127.0.0.1 only. The only stand-in in llmlab's tests: everything between the client
and this server is real.

    up = Upstream().start()          # in a background thread; up.base_url = http://127.0.0.1:PORT/v1
    ...
    up.calls_by_id["abc"]            # what it received and the usage it reported

Behaviour per request comes from a ``mock`` object in the JSON body, or from ``<mock>{...}</mock>``
inside the last message's text (that one also survives litellm's translation to Anthropic):

    id            key for ``calls_by_id``
    usage         the usage to report, e.g. {"prompt_tokens": 12, "completion_tokens": 5,
                  "cached_tokens": 4, "reasoning_tokens": 2}; Anthropic: {"input_tokens": ...,
                  "output_tokens": ..., "cache_read_input_tokens": ..., "cache_creation_input_tokens": ...}
    status        answer with this HTTP status and an OpenAI-shaped error
    echo_auth     put the received Authorization header into the error message (key-leak tests)
    hang          seconds to wait before answering (ends early when the client goes away)
    chunks        number of content chunks when streaming (default 3)
    chunk_delay   seconds between chunks
    reset_after   reset the TCP connection after this many chunks (0: before answering)

Run standalone for benchmarks:  python tests/e2e/upstream.py --port 18001
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import struct
import threading
import time
import uuid

import tornado.httpserver
import tornado.netutil
import tornado.web

MAX_HANG_S = 60.0
_MOCK_TAG = re.compile(r"<mock>(.*?)</mock>", re.S)


def _text_of(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _mock_of(body: dict) -> dict:
    mock = body.get("mock")
    if isinstance(mock, dict):
        return mock
    msgs = body.get("messages") or []
    if msgs:
        m = _MOCK_TAG.search(_text_of(msgs[-1].get("content")))
        if m:
            return json.loads(m.group(1))
    return {}


def _prompt_text(body: dict) -> str:
    parts = [_text_of(m.get("content")) for m in body.get("messages") or []]
    system = body.get("system")
    if system:
        parts.append(_text_of(system))
    return " ".join(parts)


class _Base(tornado.web.RequestHandler):
    def initialize(self, upstream: "Upstream"):
        self.up = upstream
        self.gone = asyncio.Event()
        self.call: dict | None = None

    def on_connection_close(self):
        self.gone.set()
        if self.call is not None:
            self.call["disconnected"] = True

    def check_xsrf_cookie(self):
        pass

    async def begin(self) -> tuple[dict, dict, dict]:
        body = json.loads(self.request.body or b"{}")
        mock = _mock_of(body)
        call = {"path": self.request.path, "headers": dict(self.request.headers), "body": body,
                "mock": mock, "usage": None, "received_at": time.time()}
        self.call = call
        self.up.record(call)
        if mock.get("hang"):
            try:
                await asyncio.wait_for(self.gone.wait(), min(float(mock["hang"]), MAX_HANG_S))
            except asyncio.TimeoutError:
                pass
        return body, mock, call

    def reset(self) -> None:
        """Close the connection with a TCP RST (an upstream that dies mid-answer)."""
        stream = self.request.connection.stream
        try:
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        stream.close()

    def fail(self, mock: dict, call: dict) -> bool:
        status = mock.get("status")
        if mock.get("echo_auth"):
            status = status or 401
        if self.up.api_key and self.request.headers.get("Authorization") != f"Bearer {self.up.api_key}" \
                and self.request.headers.get("x-api-key") != self.up.api_key:
            status = 401
            mock = {**mock, "echo_auth": True}
        if not status:
            return False
        message = "mock failure"
        if mock.get("echo_auth"):
            message = ("Incorrect API key provided: "
                       + (self.request.headers.get("Authorization") or self.request.headers.get("x-api-key") or "none"))
        self.set_status(int(status))
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": {"message": message, "type": "server_error" if int(status) >= 500
                                          else "invalid_request_error", "param": None, "code": "mock_error"}}))
        call["status"] = int(status)
        return True


class ChatHandler(_Base):
    async def post(self):
        body, mock, call = await self.begin()
        if self.gone.is_set() or self.fail(mock, call):
            return
        if mock.get("reset_after") == 0:
            return self.reset()
        prompt = _prompt_text(body)
        answer_words = f"echo: {prompt[:200]}".split()
        u = mock.get("usage") or {}
        prompt_tokens = int(u.get("prompt_tokens", 10 + len(prompt) // 4))
        completion_tokens = int(u.get("completion_tokens", len(answer_words)))
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        if "cached_tokens" in u:
            usage["prompt_tokens_details"] = {"cached_tokens": int(u["cached_tokens"])}
        if "reasoning_tokens" in u:
            usage["completion_tokens_details"] = {"reasoning_tokens": int(u["reasoning_tokens"])}
        cid = "chatcmpl-" + uuid.uuid4().hex[:20]
        model = body.get("model", "unknown")
        created = int(time.time())
        if not body.get("stream"):
            call["usage"] = usage
            self.set_header("Content-Type", "application/json")
            self.set_header("x-request-id", "req_" + cid[9:])
            return self.finish(json.dumps({
                "id": cid, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": " ".join(answer_words)},
                             "finish_reason": "stop"}], "usage": usage}))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self.set_header("Content-Type", "text/event-stream")
        n = max(1, int(mock.get("chunks", 3)))
        size = max(1, -(-len(answer_words) // n))
        pieces = [" ".join(answer_words[i:i + size]) + " " for i in range(0, len(answer_words), size)]
        pieces = (pieces + [""] * n)[:n]
        base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}
        if include_usage:
            base["usage"] = None
        for i, piece in enumerate(pieces):
            if mock.get("reset_after") is not None and i >= int(mock["reset_after"]):
                call["usage"] = None
                return self.reset()
            delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
            chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            if self.gone.is_set():
                return
            self.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            await self.flush()
            if mock.get("chunk_delay"):
                try:
                    await asyncio.wait_for(self.gone.wait(), float(mock["chunk_delay"]))
                    return
                except asyncio.TimeoutError:
                    pass
        last = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        self.write(b"data: " + json.dumps(last).encode() + b"\n\n")
        if include_usage:
            self.write(b"data: " + json.dumps({**base, "choices": [], "usage": usage}).encode() + b"\n\n")
            call["usage"] = usage
        self.write(b"data: [DONE]\n\n")
        self.finish()


class EmbeddingsHandler(_Base):
    async def post(self):
        body, mock, call = await self.begin()
        if self.gone.is_set() or self.fail(mock, call):
            return
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
        u = mock.get("usage") or {}
        prompt_tokens = int(u.get("prompt_tokens", sum(1 + len(str(x)) // 4 for x in inputs)))
        usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
        call["usage"] = usage
        data = [{"object": "embedding", "index": i,
                 "embedding": [((hash(str(x)) >> k) % 1000) / 1000.0 for k in range(8)]}
                for i, x in enumerate(inputs)]
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"object": "list", "data": data, "model": body.get("model"), "usage": usage}))


class AnthropicMessagesHandler(_Base):
    """Anthropic's Messages API, enough for litellm's anthropic provider."""

    async def post(self):
        body, mock, call = await self.begin()
        if self.gone.is_set() or self.fail(mock, call):
            return
        prompt = _prompt_text(body)
        text = f"echo: {prompt[:200]}"
        u = mock.get("usage") or {}
        usage = {"input_tokens": int(u.get("input_tokens", 10 + len(prompt) // 4)),
                 "output_tokens": int(u.get("output_tokens", len(text.split()))),
                 "cache_creation_input_tokens": int(u.get("cache_creation_input_tokens", 0)),
                 "cache_read_input_tokens": int(u.get("cache_read_input_tokens", 0))}
        call["usage"] = usage
        mid = "msg_" + uuid.uuid4().hex[:20]
        model = body.get("model", "claude")
        if not body.get("stream"):
            self.set_header("Content-Type", "application/json")
            return self.finish(json.dumps({
                "id": mid, "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                "stop_sequence": None, "usage": usage}))
        self.set_header("Content-Type", "text/event-stream")

        def event(name, data):
            self.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())

        start_usage = {**usage, "output_tokens": 1}
        event("message_start", {"type": "message_start", "message": {
            "id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": start_usage}})
        event("content_block_start", {"type": "content_block_start", "index": 0,
                                      "content_block": {"type": "text", "text": ""}})
        for word in text.split():
            event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                          "delta": {"type": "text_delta", "text": word + " "}})
            await self.flush()
        event("content_block_stop", {"type": "content_block_stop", "index": 0})
        event("message_delta", {"type": "message_delta",
                                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                "usage": {"output_tokens": usage["output_tokens"]}})
        event("message_stop", {"type": "message_stop"})
        self.finish()


class Upstream:
    def __init__(self, port: int = 0, *, api_key: str | None = None):
        self.port = port
        self.api_key = api_key
        self.calls: list[dict] = []
        self.calls_by_id: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def record(self, call: dict) -> None:
        with self._lock:
            self.calls.append(call)
            if call["mock"].get("id") is not None:
                self.calls_by_id[str(call["mock"]["id"])] = call

    def app(self) -> tornado.web.Application:
        kw = {"upstream": self}
        return tornado.web.Application([
            (r"/v1/chat/completions", ChatHandler, kw),
            (r"/chat/completions", ChatHandler, kw),
            (r"/v1/embeddings", EmbeddingsHandler, kw),
            (r"/v1/messages", AnthropicMessagesHandler, kw),
        ])

    def _listen(self) -> None:
        sockets = tornado.netutil.bind_sockets(self.port, "127.0.0.1", family=socket.AF_INET)
        self.port = sockets[0].getsockname()[1]
        server = tornado.httpserver.HTTPServer(self.app())
        server.add_sockets(sockets)

    def start(self) -> "Upstream":
        ready = threading.Event()

        def run():
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.call_soon(self._listen)
            self._loop.call_soon(ready.set)
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="test-upstream", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)


def main() -> None:
    ap = argparse.ArgumentParser(description="Local OpenAI-compatible upstream on 127.0.0.1")
    ap.add_argument("--port", type=int, default=18001)
    args = ap.parse_args()

    async def serve():
        up = Upstream(args.port)
        up.record = lambda call: None  # no call log: a benchmark would grow it without bound
        up._listen()
        print(f"listening on {up.base_url}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
