"""A webhook receiver on loopback for alert tests: records what it is sent, can misbehave.

    rx = WebhookReceiver().start()       # background thread; rx.url = http://127.0.0.1:PORT/hook
    rx.url_for("/services/T0/B0/secret?chat_id=1")   # any path and query are accepted
    rx.fail_first = 2                    # answer the next 2 requests with fail_status (500)
    rx.fail_status = 429; rx.retry_after = "0"       # ... or 429 with a Retry-After
    rx.hang = 30.0                       # hold every request this long (until stop()) first
    bodies = rx.wait_for(1, timeout=30)  # JSON bodies of requests answered 200
    rx.requests                          # every request, failed ones too: path, query, body, status
    rx.stop()

It is a real HTTP server (tornado) on 127.0.0.1; nothing else is faked.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import tornado.httpserver
import tornado.netutil
import tornado.web


class _Hook(tornado.web.RequestHandler):
    def initialize(self, rx: "WebhookReceiver"):
        self.rx = rx

    def check_xsrf_cookie(self):   # a webhook endpoint, like Slack's
        return None

    async def post(self, path: str):
        rx = self.rx
        with rx._lock:
            rx.seen += 1
            fail = rx.fail_first > 0
            if fail:
                rx.fail_first -= 1
        if rx.hang > 0:
            try:
                await asyncio.wait_for(rx._stopping.wait(), rx.hang)
            except asyncio.TimeoutError:
                pass
        try:
            body = json.loads(self.request.body or b"null")
        except ValueError:
            body = self.request.body.decode("utf-8", "replace")
        status = rx.fail_status if fail else 200
        entry = {"path": "/" + path, "query": self.request.query, "body": body, "status": status,
                 "headers": dict(self.request.headers), "at": time.time()}
        with rx._lock:
            rx.requests.append(entry)
        self.set_status(status)
        if fail and status == 429 and rx.retry_after is not None:
            self.set_header("Retry-After", rx.retry_after)
        self.finish({"ok": not fail})


class WebhookReceiver:
    def __init__(self, *, fail_first: int = 0, fail_status: int = 500, hang: float = 0.0):
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.retry_after: str | None = None
        self.hang = hang
        self.seen = 0                  # requests that arrived (hanging ones included)
        self.requests: list[dict] = []  # requests answered
        self.port = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: tornado.httpserver.HTTPServer | None = None
        self._stopping: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return self.url_for("/hook")

    def url_for(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def delivered(self) -> list[dict]:
        """JSON bodies of the requests answered 2xx, in arrival order."""
        with self._lock:
            return [r["body"] for r in self.requests if 200 <= r["status"] < 300]

    def wait_for(self, n: int, timeout: float = 30.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.delivered()
            if len(got) >= n:
                return got
            time.sleep(0.05)
        return self.delivered()

    def wait_seen(self, n: int, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while self.seen < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.seen

    def start(self) -> "WebhookReceiver":
        ready = threading.Event()
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
        self.port = sockets[0].getsockname()[1]

        def run():
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._stopping = asyncio.Event()
            # No access log: it is the remote service's, and would put the URLs (secrets
            # included) into the captured logs that tests search for leaks.
            app = tornado.web.Application([(r"/(.*)", _Hook, {"rx": self})],
                                          log_function=lambda handler: None)
            self._server = tornado.httpserver.HTTPServer(app)
            self._server.add_sockets(sockets)
            self._loop.call_soon(ready.set)
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="test-webhook-receiver", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._stopping.set)
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.stop)
        time.sleep(0.05)   # let released hangs answer
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)
