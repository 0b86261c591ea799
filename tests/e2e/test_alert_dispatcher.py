"""AlertDispatcher against a real HTTP receiver on loopback: body shape, retries with backoff,
giving up, refusals, and no webhook secret in any log line."""

from __future__ import annotations

import asyncio
import logging
import socket
from datetime import datetime, timezone

import pytest
from jupyter_events import EventLogger
from webhook_receiver import WebhookReceiver

from llmlab.proxy.alerts import SCHEMA_ID, Alert, AlertDispatcher, redact_url, register_event_schema

SLACK_SECRET = "T0AAA/B0BBB/xoxSlackSecret123"
TELEGRAM_TOKEN = "123456:AAtelegramSecretToken"


def make_alert(**kw) -> Alert:
    values = dict(budget_id="b-research-month", scope="project", target="research", threshold=0.8,
                  spent_usd=8.125, limit_usd=10.0, period="month",
                  period_start=datetime(2026, 12, 1, tzinfo=timezone.utc),
                  period_end=datetime(2027, 1, 1, tzinfo=timezone.utc), hard=False,
                  fired_at=datetime(2026, 12, 2, 13, 0, tzinfo=timezone.utc))
    values.update(kw)
    return Alert(**values)


@pytest.fixture
def rx():
    r = WebhookReceiver().start()
    yield r
    r.stop()


def run(dispatcher: AlertDispatcher, *alerts: Alert, drain: float = 30.0) -> None:
    async def main():
        for a in alerts:
            dispatcher.dispatch(a)
        await dispatcher.drain(drain)
        await dispatcher.aclose(timeout=1.0)

    asyncio.run(main())


def test_alert_text_id_and_dict():
    a = make_alert(threshold=1.0, spent_usd=10.5, hard=True, target="re\nsearch")
    assert a.alert_id == "b-research-month:20261201T000000Z:1"
    assert make_alert().alert_id == "b-research-month:20261201T000000Z:0.8"
    text = a.text()
    assert "\n" not in text
    assert "project 're search'" in text and "$10.50 of its $10.00" in text
    assert "105%" in text and "threshold 100%" in text and "2027-01-01 00:00 UTC" in text
    assert "refused" in text
    assert "refused" not in make_alert().text()
    d = a.as_dict()
    assert d["period_end"] == "2027-01-01T00:00:00+00:00" and d["alert_id"] == a.alert_id


def test_every_webhook_gets_a_slack_and_generic_body(rx, caplog):
    slack = rx.url_for(f"/services/{SLACK_SECRET}")
    telegram = rx.url_for(f"/bot{TELEGRAM_TOKEN}/sendMessage?chat_id=42")
    d = AlertDispatcher(webhooks=[slack, telegram], log=logging.getLogger("t.alerts"))
    alert = make_alert()
    with caplog.at_level(logging.DEBUG, logger="t.alerts"):
        run(d, alert)
    got = sorted(rx.requests, key=lambda r: r["path"])
    assert [r["path"] for r in got] == [f"/bot{TELEGRAM_TOKEN}/sendMessage", f"/services/{SLACK_SECRET}"]
    assert got[0]["query"] == "chat_id=42"          # Telegram reads chat_id from the query
    for r in got:
        body = r["body"]
        assert body["text"] == alert.text()         # Slack and Telegram read "text"
        assert body["alert"] == {**alert.as_dict(), "message": alert.text()}
        assert r["headers"]["Content-Type"].startswith("application/json")
    assert (d.delivered, d.failed, d.attempts, d.dispatched) == (2, 0, 2, 1)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and alert.alert_id in warnings[0].getMessage()


def test_failures_are_retried_with_backoff_then_delivered(rx, caplog):
    rx.fail_first = 2
    d = AlertDispatcher(webhooks=[rx.url], log=logging.getLogger("t.alerts"), retries=5,
                        backoff=0.05)
    with caplog.at_level(logging.INFO, logger="t.alerts"):
        run(d, make_alert())
    assert [r["status"] for r in rx.requests] == [500, 500, 200]
    assert (d.delivered, d.failed, d.attempts) == (1, 0, 3)
    assert any("on attempt 3" in r.getMessage() for r in caplog.records)


def test_429_retry_after_is_honoured(rx):
    rx.fail_first, rx.fail_status, rx.retry_after = 1, 429, "0"
    d = AlertDispatcher(webhooks=[rx.url], log=logging.getLogger("t.alerts"), backoff=30.0)
    run(d, make_alert())   # a 30 s backoff would outlive the drain; Retry-After: 0 wins
    assert [r["status"] for r in rx.requests] == [429, 200]
    assert d.delivered == 1


def test_backoff_doubles_with_jitter_within_bounds():
    d = AlertDispatcher(webhooks=[], backoff=1.0)
    for attempt, step in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0)):
        waits = {d._delay(attempt, None) for _ in range(200)}
        assert all(step / 2 <= w <= step for w in waits)
        assert len(waits) > 1   # jittered, not a fixed schedule
    assert d._delay(1, "7") == 7.0 and d._delay(1, "99999") == 300.0
    assert 4.0 <= d._delay(4, "Wed, 21 Oct 2015 07:28:00 GMT") <= 8.0   # a date: our own backoff


def test_gives_up_after_n_attempts_with_one_redacted_log_line(rx, caplog):
    rx.fail_first = 100
    url = rx.url_for(f"/bot{TELEGRAM_TOKEN}/sendMessage?chat_id=42")
    d = AlertDispatcher(webhooks=[url], log=logging.getLogger("t.alerts"), retries=3, backoff=0.01)
    with caplog.at_level(logging.DEBUG):
        run(d, make_alert())
    assert len(rx.requests) == 3
    assert (d.delivered, d.failed, d.attempts) == (0, 1, 3)
    gave_up = [r for r in caplog.records if "gave up" in r.getMessage()]
    assert len(gave_up) == 1
    assert f"#1 (http://127.0.0.1:{rx.port}/…)" in gave_up[0].getMessage()
    assert "HTTP 500" in gave_up[0].getMessage()
    assert TELEGRAM_TOKEN not in caplog.text and "chat_id" not in caplog.text


def test_a_refusal_is_not_retried(rx):
    rx.fail_first, rx.fail_status = 5, 404
    d = AlertDispatcher(webhooks=[rx.url], log=logging.getLogger("t.alerts"), retries=5, backoff=0.01)
    run(d, make_alert())
    assert len(rx.requests) == 1 and (d.failed, d.attempts) == (1, 1)


def test_an_unreachable_or_hanging_webhook_times_out_and_gives_up(rx, caplog):
    rx.hang = 30.0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]   # nothing listens there once the socket closes
    dead = f"http://user:pw@127.0.0.1:{closed_port}/hooks/{SLACK_SECRET}"
    d = AlertDispatcher(webhooks=[rx.url, dead], log=logging.getLogger("t.alerts"), retries=2,
                        backoff=0.01, timeout=0.3)
    with caplog.at_level(logging.DEBUG):
        run(d, make_alert())
    assert (d.delivered, d.failed, d.attempts) == (0, 2, 4)
    assert rx.seen == 2
    msgs = [r.getMessage() for r in caplog.records if "gave up" in r.getMessage()]
    assert any("TimeoutError" in m for m in msgs) and any("ClientConnector" in m for m in msgs)
    assert SLACK_SECRET not in caplog.text and "pw@" not in caplog.text


def test_invalid_urls_are_ignored_without_leaking_them(caplog):
    with caplog.at_level(logging.ERROR):
        d = AlertDispatcher(webhooks=["ftp://host/secret-path", "not a url"], log=logging.getLogger("t"))
    assert d.webhooks == [] and "secret-path" not in caplog.text and len(caplog.records) == 2
    assert redact_url("https://hooks.slack.com/services/T/B/X?x=1") == "https://hooks.slack.com/…"


def test_the_jupyter_event_is_emitted_and_valid():
    events = []

    async def listener(logger, schema_id, data):
        events.append((schema_id, data))

    async def main():
        el = EventLogger()
        register_event_schema(el)
        register_event_schema(el)   # idempotent
        el.add_listener(schema_id=SCHEMA_ID, listener=listener)
        d = AlertDispatcher(webhooks=[], event_logger=el)
        d.dispatch(make_alert(threshold=1.0, spent_usd=10.0))
        await asyncio.sleep(0.1)
        await asyncio.gather(*el._active_listeners)
        return d

    d = asyncio.run(main())
    assert len(events) == 1
    schema_id, data = events[0]
    assert schema_id == SCHEMA_ID
    assert data["alert_id"] == "b-research-month:20261201T000000Z:1"
    assert data["threshold"] == 1.0 and data["message"].startswith("llmlab budget alert")
    assert d.events_failed == 0


def test_message_writer_adds_a_line_and_falls_back_on_failure(rx):
    async def witty(alert):
        return "  The research fund is\nfeeling light.  "

    async def broken(alert):
        raise RuntimeError("model down")

    async def slow(alert):
        await asyncio.sleep(30)
        return "too late"

    alert = make_alert()
    for writer, expected in ((witty, "The research fund is feeling light.\n" + alert.text()),
                             (broken, alert.text()), (slow, alert.text())):
        rx.requests.clear()
        d = AlertDispatcher(webhooks=[rx.url], message_writer=writer, message_timeout=0.2)
        run(d, alert)
        assert [r["body"]["text"] for r in rx.requests] == [expected]
        assert rx.requests[0]["body"]["alert"]["message"] == expected


def test_dispatch_from_a_worker_thread_is_handed_to_the_loop(rx):
    d = AlertDispatcher(webhooks=[rx.url])

    async def main():
        loop = asyncio.get_running_loop()
        d.bind_loop(loop)
        await loop.run_in_executor(None, d.dispatch, make_alert())
        while d.dispatched == 0:
            await asyncio.sleep(0.01)
        await d.drain(30)
        await d.aclose()

    asyncio.run(main())
    assert [b["alert"]["threshold"] for b in rx.delivered()] == [0.8]
