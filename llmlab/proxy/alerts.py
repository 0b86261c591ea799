"""Budget alerts: the server log, a Jupyter event, and webhooks with retries.

The policy code (budgets) decides *when* an alert fires (once per budget, period and threshold)
and calls :meth:`AlertDispatcher.dispatch` from the event loop. The dispatcher only delivers:

    log         one WARNING line with the alert's text (no secret in it)
    event       ``https://events.jupyter.org/llmlab/budget_alert/v1`` on the server's
                ``event_logger`` (schema: llmlab/events/budget_alert/v1.yaml)
    webhooks    one POST per URL of ``{"text": ..., "alert": {...}}``: Slack's incoming webhooks
                read ``text``, generic receivers read ``alert``, and Telegram's ``sendMessage``
                reads ``text`` (``chat_id`` in the URL's query string)

Delivery runs in tasks on the loop, never in the proxied call: bounded concurrency, a timeout per
attempt, exponential backoff with jitter on connection errors, timeouts, 5xx and 429 (honouring
``Retry-After``), then one log line when it gives up. Webhook URLs carry secrets (Slack's hook
path, Telegram's bot token), so logs name a webhook by its number and host only.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

import aiohttp

SCHEMA_ID = "https://events.jupyter.org/llmlab/budget_alert/v1"
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "events" / "budget_alert" / "v1.yaml"
# Statuses worth retrying: the receiver may be back soon. Any other 4xx is our request's fault
# (a wrong URL, a revoked token): retrying would only repeat it.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 300.0
MAX_PENDING = 1000
MAX_MESSAGE_CHARS = 500

MessageWriter = Callable[["Alert"], Awaitable[str]]


@dataclass(frozen=True)
class Alert:
    budget_id: str
    scope: str              # 'key' | 'project' | 'client'
    target: str             # key id (the public id, never the secret), project or client name
    threshold: float        # fraction of the limit: 0.8, 1.0, ...
    spent_usd: float
    limit_usd: float
    period: str             # 'day' | 'week' | 'month' | 'custom'
    period_start: datetime  # tz-aware UTC
    period_end: datetime    # tz-aware UTC (when the budget resets)
    hard: bool
    fired_at: datetime      # tz-aware UTC

    @property
    def alert_id(self) -> str:
        return f"{self.budget_id}:{self.period_start:%Y%m%dT%H%M%SZ}:{self.threshold:g}"

    def text(self) -> str:
        """One line: who, how much of what, when it resets."""
        used = self.spent_usd / self.limit_usd if self.limit_usd else float("inf")
        period = "this period" if self.period == "custom" else f"this {self.period}"
        target = " ".join(str(self.target).split())   # user-chosen: no line breaks in logs
        line = (f"llmlab budget alert: {self.scope} '{target}' has spent "
                f"${self.spent_usd:,.2f} of its ${self.limit_usd:,.2f} budget {period} "
                f"({used:.0%}, threshold {self.threshold:.0%}); resets "
                f"{self.period_end:%Y-%m-%d %H:%M} UTC.")
        if self.hard and self.threshold >= 1.0:
            line += " Hard limit: further calls are refused until then."
        return line

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("period_start", "period_end", "fired_at"):
            d[k] = d[k].isoformat()
        d["alert_id"] = self.alert_id
        return d


def redact_url(url: str) -> str:
    """``scheme://host[:port]/…``: enough to tell webhooks apart in a log, no path, no query,
    no credentials (Slack's and Telegram's secrets live in the path)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<malformed URL>"
    return f"{parts.scheme or '?'}://{host}{port}/…"


def valid_webhook(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


def webhook_body(alert: Alert, text: str) -> dict[str, Any]:
    """Slack-compatible (``text``) and generic (``alert``) at once."""
    return {"text": text, "alert": {**alert.as_dict(), "message": text}}


def _describe(exc: BaseException) -> str:
    # Never str(exc): aiohttp puts the full URL (and so the secret) into some messages.
    reason = getattr(exc, "strerror", None)
    return f"{exc.__class__.__name__}{f' ({reason})' if reason else ''}"


def _retry_after(value: str | None) -> float | None:
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_S) if value else None
    except ValueError:
        return None   # an HTTP date: fall back to our own backoff


class AlertDispatcher:
    """Delivers alerts; never blocks and never raises into the caller."""

    def __init__(self, *, webhooks: list[str], log: logging.Logger | None = None,
                 event_logger=None, retries: int = 5, backoff: float = 1.0, timeout: float = 10.0,
                 message_writer: MessageWriter | None = None, max_concurrency: int = 4,
                 message_timeout: float = 10.0):
        self.log = log or logging.getLogger("llmlab.alerts")
        self.event_logger = event_logger
        self.retries = max(1, int(retries))
        self.backoff = max(0.0, float(backoff))
        self.timeout = float(timeout)
        self.message_writer = message_writer
        self.message_timeout = float(message_timeout)
        self.webhooks: list[str] = []
        for i, url in enumerate(webhooks or [], 1):
            if valid_webhook(url):
                self.webhooks.append(url)
            else:
                self.log.error("llmlab: alert webhook #%d (%s) is not an http(s) URL; ignored",
                               i, redact_url(url))
        self._names = {url: f"#{i} ({redact_url(url)})" for i, url in enumerate(self.webhooks, 1)}
        # Per webhook, so a hanging receiver holds only its own slots, never another's.
        self._concurrency = max(1, int(max_concurrency))
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        # Counters (tests and the metrics endpoint read them).
        self.dispatched = 0
        self.delivered = 0
        self.failed = 0
        self.attempts = 0
        self.events_failed = 0
        self.dropped = 0

    # -- the one entry point ---------------------------------------------------------------
    def dispatch(self, alert: Alert) -> None:
        """Log, emit the event, and schedule webhook deliveries. Call on the loop's thread (or
        through ``loop.call_soon_threadsafe``); from another thread it hands itself over."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        home = self._loop
        if home is not None and loop is not home and not home.is_closed() and \
                (loop is None or home.is_running()):
            home.call_soon_threadsafe(self.dispatch, alert)   # our session lives on that loop
            return
        try:
            self._dispatch(alert, loop)
        except Exception:  # noqa: BLE001 - an alert must never break the call that raised it
            self.log.exception("llmlab: could not dispatch alert %s", alert.alert_id)

    def _dispatch(self, alert: Alert, loop: asyncio.AbstractEventLoop | None) -> None:
        self.dispatched += 1
        plain = alert.text()
        self.log.warning("%s [alert %s]", plain, alert.alert_id)
        self._emit(alert, plain)
        if not self.webhooks or self._closed:
            return
        if loop is None:
            self.log.error("llmlab: alert %s not sent to webhooks: no event loop", alert.alert_id)
            return
        self._loop = loop
        if len(self._tasks) >= MAX_PENDING:
            self.dropped += 1
            self.log.error("llmlab: %d alert deliveries pending; alert %s not sent to webhooks",
                           len(self._tasks), alert.alert_id)
            return
        task = loop.create_task(self._deliver_all(alert, plain), name=f"llmlab-alert-{alert.alert_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop that deliveries run on, for dispatches from other threads."""
        self._loop = loop

    def _emit(self, alert: Alert, text: str) -> None:
        if self.event_logger is None:
            return
        try:
            self.event_logger.emit(schema_id=SCHEMA_ID, data={**alert.as_dict(), "message": text})
        except Exception:  # noqa: BLE001 - a broken event sink must not stop the webhooks
            self.events_failed += 1
            self.log.exception("llmlab: could not emit the Jupyter event of alert %s", alert.alert_id)

    # -- webhooks --------------------------------------------------------------------------
    async def _message(self, alert: Alert, plain: str) -> str:
        if self.message_writer is None:
            return plain
        try:
            line = await asyncio.wait_for(self.message_writer(alert), self.message_timeout)
        except Exception as exc:  # noqa: BLE001 - any failure means the plain text
            self.log.info("llmlab: alert message writer failed (%s); sending the plain text",
                          _describe(exc))
            return plain
        line = " ".join(str(line or "").split())[:MAX_MESSAGE_CHARS]
        # The model writes the tone; the facts stay exact, on their own line.
        return f"{line}\n{plain}" if line else plain

    async def _deliver_all(self, alert: Alert, plain: str) -> None:
        text = await self._message(alert, plain)
        body = webhook_body(alert, text)
        await asyncio.gather(*(self._deliver(url, body, alert.alert_id) for url in self.webhooks))

    def _session_for_loop(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._concurrency * max(1, len(self.webhooks))),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"User-Agent": "llmlab-alerts"})
        return self._session

    async def _post(self, url: str, body: dict) -> tuple[int | None, str | None, str]:
        """(status, Retry-After, description) of one attempt; status None: no answer."""
        sem = self._semaphores.get(url)
        if sem is None:
            sem = self._semaphores[url] = asyncio.Semaphore(self._concurrency)
        async with sem:
            try:
                async with self._session_for_loop().post(url, json=body) as resp:
                    await resp.read()
                    return resp.status, resp.headers.get("Retry-After"), f"HTTP {resp.status}"
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                return None, None, _describe(exc)

    async def _deliver(self, url: str, body: dict, alert_id: str) -> bool:
        name = self._names[url]
        last = ""
        for attempt in range(1, self.retries + 1):
            self.attempts += 1
            status, retry_after, last = await self._post(url, body)
            if status is not None and 200 <= status < 300:
                self.delivered += 1
                if attempt > 1:
                    self.log.info("llmlab: alert %s delivered to webhook %s on attempt %d",
                                  alert_id, name, attempt)
                return True
            if status is not None and status not in RETRY_STATUSES:
                break      # the receiver refused this request; repeating it changes nothing
            if attempt < self.retries:
                await asyncio.sleep(self._delay(attempt, retry_after))
        self.failed += 1
        self.log.warning("llmlab: gave up sending alert %s to webhook %s after %d attempt(s): %s",
                         alert_id, name, attempt, last)
        return False

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        wait = _retry_after(retry_after)
        if wait is not None:
            return wait
        # Exponential, with "equal jitter": never less than half the step, so retries of many
        # alerts spread out without collapsing to zero.
        step = self.backoff * (2 ** (attempt - 1))
        return step / 2 + random.uniform(0, step / 2)

    # -- lifecycle -------------------------------------------------------------------------
    async def drain(self, timeout: float | None = None) -> None:
        """Wait for pending deliveries (tests, and a graceful stop)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def aclose(self, timeout: float = 5.0) -> None:
        """Give pending deliveries ``timeout`` seconds, cancel the rest, close the session."""
        self._closed = True
        await self.drain(timeout)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=1.0)
        if self._session is not None and not self._session.closed:
            await self._session.close()

    def stats(self) -> dict[str, int]:
        return {"dispatched": self.dispatched, "delivered": self.delivered, "failed": self.failed,
                "attempts": self.attempts, "pending": len(self._tasks),
                "events_failed": self.events_failed, "dropped": self.dropped}


def register_event_schema(event_logger) -> None:
    """Register the alert's schema with the server's event logger (once)."""
    if SCHEMA_ID not in event_logger.schemas:
        event_logger.register_event_schema(SCHEMA_PATH)
