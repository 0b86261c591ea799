"""Alerts inside a real Jupyter server (pytest-jupyter, base_url ``/a%40b/``): the Jupyter event
on the server's event bus, proxied calls that never wait for failing or hanging webhooks, and
the optional one-liner written by a model through the proxy itself."""

from __future__ import annotations

import asyncio
import json
import logging

import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_alert_dispatcher import TELEGRAM_TOKEN, make_alert
from traitlets.config import Config
from webhook_receiver import WebhookReceiver

from pytest_jupyter.jupyter_server import *  # noqa: F401,F403 - the jp_* fixtures, this module only

from llmlab.proxy.alerts import SCHEMA_ID


@pytest.fixture
def hanging():
    rx = WebhookReceiver(hang=60.0).start()
    yield rx
    rx.stop()


@pytest.fixture
def failing():
    rx = WebhookReceiver(fail_first=10**6).start()
    yield rx
    rx.stop()


@pytest.fixture
def jp_server_config(llmlab_home, hanging, failing):
    return Config({"ServerApp": {"jpserver_extensions": {"llmlab": True}},
                   "LLMLabApp": {"flush_interval": 0.2, "alert_webhook_retries": 3,
                                 "alert_webhook_backoff": 0.2, "alert_webhook_timeout": 30.0,
                                 "alert_webhooks": [
                                     hanging.url,
                                     failing.url_for(f"/bot{TELEGRAM_TOKEN}/sendMessage?chat_id=7")]}})


def openai_client(serverapp, port, base_url) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}{base_url}llmlab/v1",
                              api_key=serverapp.identity_provider.token, max_retries=0, timeout=60)


def test_alert_reaches_the_event_bus(jp_serverapp, jp_asyncio_loop):
    events = []

    async def listener(logger, schema_id, data):
        events.append(data)

    jp_serverapp.event_logger.add_listener(schema_id=SCHEMA_ID, listener=listener)
    alerts = jp_serverapp.web_app.settings["llmlab_proxy"].alerts

    async def main():
        alerts.dispatch(make_alert(threshold=1.0, spent_usd=10.0, hard=True))
        for _ in range(100):
            if events:
                break
            await asyncio.sleep(0.02)

    jp_asyncio_loop.run_until_complete(main())
    assert len(events) == 1
    assert events[0]["alert_id"] == "b-research-month:20261201T000000Z:1"
    assert events[0]["hard"] is True and "refused" in events[0]["message"]


def test_calls_complete_while_webhooks_hang_and_fail(jp_serverapp, jp_fetch, jp_asyncio_loop,
                                                     jp_http_port, jp_base_url, hanging, failing,
                                                     caplog):
    # (jp_fetch: it is what makes pytest-jupyter's server accept connections)
    alerts = jp_serverapp.web_app.settings["llmlab_proxy"].alerts
    client = openai_client(jp_serverapp, jp_http_port, jp_base_url)

    async def one(i):
        kw = dict(model="llmlab/offline", messages=[{"role": "user", "content": f"call {i}"}],
                  extra_headers={"X-LLMLab-Project": "alerts-e2e"})
        if i % 2:
            chunks = [c async for c in await client.chat.completions.create(stream=True, **kw)]
            return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return (await client.chat.completions.create(**kw)).choices[0].message.content

    async def main():
        for t in (0.5, 0.8, 1.0):
            alerts.dispatch(make_alert(threshold=t))
        while hanging.seen < 3:              # every hanging delivery holds its connection now
            await asyncio.sleep(0.02)
        answers = await asyncio.gather(*(one(i) for i in range(12)))
        return answers, dict(alerts.stats())

    with caplog.at_level(logging.DEBUG):
        answers, stats = jp_asyncio_loop.run_until_complete(main())
    assert len(answers) == 12 and all(answers)
    # The calls finished while the hanging deliveries were still waiting for an answer.
    assert stats["pending"] == 3 and stats["delivered"] == 0
    assert hanging.requests == []
    # The failing webhook was retried meanwhile, then given up on, still without a proxied
    # call waiting for it.
    deadline = jp_asyncio_loop.time() + 30
    while alerts.failed < 3 and jp_asyncio_loop.time() < deadline:
        jp_asyncio_loop.run_until_complete(asyncio.sleep(0.05))
    assert alerts.failed == 3 and len(failing.requests) == 9
    assert TELEGRAM_TOKEN not in caplog.text


class TestModelWrittenMessage:
    @pytest.fixture
    def receiver(self):
        rx = WebhookReceiver().start()
        yield rx
        rx.stop()

    @pytest.fixture(params=["llmlab/offline", "no-such-model"])
    def jp_server_config(self, request, llmlab_home, receiver):
        return Config({"ServerApp": {"jpserver_extensions": {"llmlab": True}},
                       "LLMLabApp": {"alert_webhooks": [receiver.url],
                                     "alert_message_model": request.param}})

    def test_one_liner_through_the_proxy_or_plain_text(self, jp_serverapp, jp_asyncio_loop, jp_fetch,
                                                        receiver):
        alerts = jp_serverapp.web_app.settings["llmlab_proxy"].alerts
        alert = make_alert()

        async def main():
            alerts.dispatch(alert)
            await alerts.drain(30)

        jp_asyncio_loop.run_until_complete(main())
        (body,) = receiver.delivered()
        text = body["text"]
        metrics = jp_asyncio_loop.run_until_complete(jp_fetch("llmlab", "api", "metrics")).body.decode()
        samples = [s for f in text_string_to_metric_families(metrics) for s in f.samples]
        requests = {tuple(sorted(s.labels.items())): s.value
                    for s in samples if s.name == "llmlab_requests_total"}
        counts = {(s.name, s.labels.get("result")): s.value for s in samples
                  if s.name.startswith("llmlab_alert")}
        assert counts[("llmlab_alerts_total", None)] == 1
        assert counts[("llmlab_alert_webhook_deliveries_total", "delivered")] == 1
        assert counts[("llmlab_alert_webhook_deliveries_total", "failed")] == 0
        assert counts[("llmlab_alert_webhook_attempts_total", None)] == 1
        if jp_serverapp.config.LLMLabApp.alert_message_model == "llmlab/offline":
            # The offline model's reply, then the facts, exact, on their own line.
            first, second = text.split("\n")
            assert first and first != alert.text() and second == alert.text()
            key = (("model", "llmlab/offline"), ("project", "llmlab-alerts"), ("status_class", "2xx"))
        else:
            assert text == alert.text()      # the model failed: plain text
            key = (("model", "no-such-model"), ("project", "llmlab-alerts"), ("status_class", "4xx"))
        assert requests.get(key) == 1, json.dumps(list(requests))
