"""The proxy end to end: a real ``jupyter server`` subprocess, the official openai client, a
LiteLLM-style config.yaml, and a local provider on 127.0.0.1. After every call the stored row
must match what the provider reported, exactly, and cost what LiteLLM's price says.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from decimal import Decimal

import httpx
import openai
import pytest
from proxy_server import TOKEN, ProxyServer
from fixtures import upstream  # noqa: F401 - a shared fixture

pytestmark = pytest.mark.slow
PROVIDER_KEY = "sk-e2e-provider-key-5b8e1d0c9a"
MSG = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def litellm_cost():
    """litellm.cost_per_token, imported in a thread while the server starts (3-7 s import)."""
    box = {}

    def load():
        import litellm

        box["fn"] = litellm.cost_per_token

    t = threading.Thread(target=load, daemon=True)
    t.start()

    def cost(**kw) -> Decimal:
        t.join(120)
        prompt, completion = box["fn"](**kw)
        return Decimal(repr(prompt)) + Decimal(repr(completion))

    return cost


UPSTREAM_API_KEY = PROVIDER_KEY


@pytest.fixture(scope="module")
def server(tmp_path_factory, upstream, litellm_cost):
    root = tmp_path_factory.mktemp("proxy-e2e")
    model_list = [
        {"model_name": "fast", "litellm_params": {
            "model": "openai/gpt-4o-mini", "api_base": upstream.base_url,
            "api_key": "os.environ/E2E_PROVIDER_KEY"}},
        {"model_name": "embed", "litellm_params": {
            "model": "openai/text-embedding-3-small", "api_base": upstream.base_url,
            "api_key": "os.environ/E2E_PROVIDER_KEY"}},
        {"model_name": "claude", "litellm_params": {
            "model": "anthropic/claude-haiku-4-5", "api_base": upstream.url,
            "api_key": "os.environ/E2E_PROVIDER_KEY"}},
        {"model_name": "unreachable", "litellm_params": {
            "model": "openai/gpt-4o-mini", "api_base": "http://127.0.0.1:9/v1"}},
        {"model_name": "no-price", "litellm_params": {
            "model": "openai/my-private-finetune", "api_base": upstream.base_url,
            "api_key": "os.environ/E2E_PROVIDER_KEY"}},
    ]
    srv = ProxyServer(
        root, config={"model_list": model_list,
                      "router_settings": {"model_group_alias": {"cheap": "fast"}}},
        traits={"upstream_timeout": 1.5, "max_body_bytes": 200_000, "default_project": "e2e",
                "store_bodies": "redacted"},
        env={"E2E_PROVIDER_KEY": PROVIDER_KEY, "ANTHROPIC_API_KEY": PROVIDER_KEY,
             "ANTHROPIC_API_BASE": upstream.url}).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server):
    return server.client()


@pytest.fixture(scope="module")
def seen_responses():
    """Every response body and header the tests saw, for the key-leak check at the end."""
    return []


def sid() -> str:
    return "s-" + uuid.uuid4().hex[:12]


def assert_cost(stored: Decimal, expected: Decimal) -> None:
    """litellm sums floats; the store keeps exact decimals to 12 places: equal to that quantum."""
    assert stored is not None
    assert abs(stored - expected) < Decimal("1e-12"), (stored, expected)


def one_row(server, session_id: str, *, timeout: float = 30.0) -> dict:
    rows = server.rows("session_id = ?", [session_id], expect=1, timeout=timeout)
    assert len(rows) == 1, f"expected one row for {session_id}, got {len(rows)}"
    return rows[0]


def gpt4o_mini_cost(litellm_cost, usage: dict) -> Decimal:
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
    return litellm_cost(model="gpt-4o-mini", prompt_tokens=usage["prompt_tokens"],
                        completion_tokens=usage["completion_tokens"],
                        cache_read_input_tokens=cached)


def assert_tokens_match_openai_usage(row: dict, usage: dict) -> None:
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
    assert row["input_tokens"] == usage["prompt_tokens"] - cached
    assert row["cache_read_tokens"] == cached
    assert row["cache_write_tokens"] == 0
    assert row["output_tokens"] == usage.get("completion_tokens", 0)
    assert row["reasoning_tokens"] == reasoning
    assert row["total_tokens"] == usage["prompt_tokens"] + usage.get("completion_tokens", 0)


# -- happy paths ------------------------------------------------------------------------------

def test_models_list_shows_configured_models_aliases_and_offline(client):
    ids = [m.id for m in client.models.list()]
    assert ids[:5] == ["fast", "embed", "claude", "unreachable", "no-price"]
    assert {"cheap", "llmlab/offline", "llmlab/offline-embedding"} <= set(ids)
    assert client.models.retrieve("cheap").id == "cheap"


def test_chat_non_streaming_row_matches_upstream_usage_and_litellm_price(
        server, client, upstream, litellm_cost, seen_responses):
    s = sid()
    raw = client.chat.completions.with_raw_response.create(
        model="fast", messages=MSG, user="maria",
        extra_headers={"X-LLMLab-Project": "atlas", "X-LLMLab-Client": "acme",
                       "X-LLMLab-Session": s, "X-LLMLab-Tags": "eval, nightly"},
        extra_body={"mock": {"id": s, "usage": {"prompt_tokens": 1234, "completion_tokens": 56,
                                                "cached_tokens": 1000, "reasoning_tokens": 12}}})
    resp = raw.parse()
    seen_responses.append((dict(raw.headers), resp.model_dump_json()))
    assert resp.choices[0].message.content == "echo: What is the capital of France?"
    assert float(raw.headers["X-LLMLab-Overhead-Ms"]) >= 0
    sent = upstream.calls_by_id[s]
    assert sent["headers"]["Authorization"] == f"Bearer {PROVIDER_KEY}"   # the provider's key ...
    assert TOKEN not in json.dumps(sent["headers"])                       # ... never the jupyter token
    assert sent["body"]["model"] == "gpt-4o-mini"
    row = one_row(server, s)
    assert row["request_id"] == raw.headers["X-LLMLab-Request-Id"]
    usage = sent["usage"]
    assert_tokens_match_openai_usage(row, usage)
    assert_cost(row["cost_usd"], gpt4o_mini_cost(litellm_cost, usage))
    assert row["pricing_source"].startswith("litellm:")
    assert (row["status_code"], row["stream"], row["error_type"]) == (200, False, None)
    assert (row["model_requested"], row["model"], row["provider"]) == ("fast", "gpt-4o-mini", "openai")
    assert row["api_base"] == upstream.base_url
    assert (row["project"], row["client"], row["user_id"]) == ("atlas", "acme", "maria")
    assert row["tags"] == ["eval", "nightly"]
    assert row["endpoint"] == "/v1/chat/completions" and row["source"] == "proxy"
    assert row["duration_ms"] > 0 and row["ttft_ms"] is None


def test_stream_with_include_usage_forwards_usage_chunk(server, client, upstream, litellm_cost):
    s = sid()
    stream = client.chat.completions.create(
        model="cheap", messages=MSG, stream=True, stream_options={"include_usage": True},
        extra_headers={"X-LLMLab-Session": s},
        extra_body={"mock": {"id": s, "chunks": 4, "usage": {"prompt_tokens": 77, "completion_tokens": 9}}})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() == "echo: What is the capital of France?"
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 77
    row = one_row(server, s)
    usage = upstream.calls_by_id[s]["usage"]
    assert_tokens_match_openai_usage(row, usage)
    assert_cost(row["cost_usd"], gpt4o_mini_cost(litellm_cost, usage))
    assert row["stream"] is True and row["status_code"] == 200
    assert row["model_requested"] == "cheap" and row["project"] == "e2e"   # default project
    assert 0 < row["ttft_ms"] <= row["duration_ms"]


def test_stream_without_include_usage_still_records_usage_but_hides_chunk(server, client, upstream,
                                                                          litellm_cost):
    s = sid()
    chunks = list(client.chat.completions.create(
        model="fast", messages=MSG, stream=True, extra_headers={"X-LLMLab-Session": s},
        extra_body={"mock": {"id": s, "usage": {"prompt_tokens": 500, "completion_tokens": 40,
                                                "cached_tokens": 128}}}))
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)   # no usage-only chunk reached the client
    sent = upstream.calls_by_id[s]
    assert sent["body"]["stream_options"] == {"include_usage": True}   # asked upstream anyway
    row = one_row(server, s)
    assert_tokens_match_openai_usage(row, sent["usage"])
    assert_cost(row["cost_usd"], gpt4o_mini_cost(litellm_cost, sent["usage"]))


def test_embeddings_recorded_with_price(server, client, upstream, litellm_cost):
    s = sid()
    resp = client.embeddings.create(model="embed", input=["alpha", "beta gamma"],
                                    extra_headers={"X-LLMLab-Session": s},
                                    extra_body={"mock": {"id": s, "usage": {"prompt_tokens": 321}}})
    assert len(resp.data) == 2 and resp.usage.prompt_tokens == 321
    row = one_row(server, s)
    assert (row["endpoint"], row["input_tokens"], row["output_tokens"], row["total_tokens"]) == \
        ("/v1/embeddings", 321, 0, 321)
    assert_cost(row["cost_usd"], litellm_cost(model="text-embedding-3-small", prompt_tokens=321,
                                              completion_tokens=0))
    stored = json.loads(row["response_body"])
    assert stored["data"][0]["embedding"] == {"dimensions": 8}   # vectors are never stored


def test_body_metadata_and_user_attribute_the_call(server, client, upstream):
    s = sid()
    client.chat.completions.create(
        model="fast", messages=MSG, user="jonas",
        metadata={"project": "docs-search", "client": "globex", "session_id": s,
                  "tags": "a,b", "ticket": "T-1"},
        extra_body={"mock": {"id": s}})
    row = one_row(server, s)
    assert (row["project"], row["client"], row["user_id"]) == ("docs-search", "globex", "jonas")
    assert row["tags"] == ["a", "b"] and json.loads(row["metadata"]) == {"ticket": "T-1"}
    assert "metadata" not in upstream.calls_by_id[s]["body"]   # llmlab's, not the provider's


def test_redacted_bodies_keep_structure_not_content(server, client, upstream):
    s = sid()
    client.chat.completions.create(model="fast", messages=MSG, temperature=0.5,
                                   extra_headers={"X-LLMLab-Session": s}, extra_body={"mock": {"id": s}})
    row = one_row(server, s)
    req, resp = json.loads(row["request_body"]), json.loads(row["response_body"])
    assert req["messages"] == [{"role": "user", "content": f"[redacted: {len(MSG[0]['content'])} chars]"}]
    assert req["temperature"] == 0.5 and req["model"] == "fast"
    assert resp["choices"][0]["message"]["role"] == "assistant"
    assert "France" not in row["response_body"] and "France" not in row["request_body"]


def test_unpriced_model_is_recorded_with_null_cost(server, client):
    s = sid()
    client.chat.completions.create(model="no-price", messages=MSG, extra_headers={"X-LLMLab-Session": s},
                                   extra_body={"mock": {"id": s, "usage": {"prompt_tokens": 10, "completion_tokens": 2}}})
    row = one_row(server, s)
    assert row["input_tokens"] == 10 and row["cost_usd"] is None and row["pricing_source"] is None


def test_offline_model_answers_streaming_and_not(server, client):
    s1, s2 = sid(), sid()
    r = client.chat.completions.create(model="llmlab/offline", messages=MSG,
                                       extra_headers={"X-LLMLab-Session": s1})
    assert "offline" in r.choices[0].message.content and r.usage.total_tokens > 0
    chunks = list(client.chat.completions.create(
        model="llmlab/offline", messages=MSG, stream=True, stream_options={"include_usage": True},
        extra_headers={"X-LLMLab-Session": s2}))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == r.choices[0].message.content
    assert chunks[-1].usage.model_dump() == r.usage.model_dump()
    for s, usage in ((s1, r.usage), (s2, chunks[-1].usage)):
        row = one_row(server, s)
        assert row["input_tokens"] == usage.prompt_tokens and row["output_tokens"] == usage.completion_tokens
        assert row["cost_usd"] == 0 and row["provider"] == "llmlab"


# -- the litellm path -------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["claude", "anthropic/claude-haiku-4-5"])
def test_anthropic_through_litellm_records_cache_tokens(server, client, upstream, litellm_cost, model):
    """A listed deployment and an unlisted provider/model name, both to a fake Anthropic API."""
    s = sid()
    mock = {"id": s, "usage": {"input_tokens": 900, "output_tokens": 33,
                               "cache_read_input_tokens": 4000, "cache_creation_input_tokens": 250}}
    r = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": f"hello <mock>{json.dumps(mock)}</mock>"}],
        extra_headers={"X-LLMLab-Session": s})
    assert r.choices[0].message.content.startswith("echo: hello")
    sent = upstream.calls_by_id[s]
    assert sent["path"] == "/v1/messages" and sent["headers"].get("X-Api-Key") == PROVIDER_KEY
    row = one_row(server, s, timeout=60)
    u = sent["usage"]
    assert (row["input_tokens"], row["output_tokens"], row["cache_read_tokens"], row["cache_write_tokens"]) == \
        (u["input_tokens"], u["output_tokens"], u["cache_read_input_tokens"], u["cache_creation_input_tokens"])
    assert row["total_tokens"] == 900 + 33 + 4000 + 250
    assert row["provider"] == "anthropic" and row["model"] == "claude-haiku-4-5"
    expected = litellm_cost(model="claude-haiku-4-5", custom_llm_provider="anthropic",
                            prompt_tokens=900 + 4000 + 250, completion_tokens=33,
                            cache_read_input_tokens=4000, cache_creation_input_tokens=250)
    assert_cost(row["cost_usd"], expected)


def test_anthropic_stream_through_litellm(server, client, upstream):
    s = sid()
    mock = {"id": s, "usage": {"input_tokens": 70, "output_tokens": 5}}
    chunks = list(client.chat.completions.create(
        model="claude", stream=True, extra_headers={"X-LLMLab-Session": s},
        messages=[{"role": "user", "content": f"hi <mock>{json.dumps(mock)}</mock>"}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).startswith("echo: hi")
    assert all(c.usage is None for c in chunks)
    row = one_row(server, s, timeout=60)
    assert (row["input_tokens"], row["output_tokens"], row["stream"]) == (70, 5, True)


# -- bad input: 4xx in OpenAI's shape, each recorded ------------------------------------------

BAD_REQUESTS = [
    ("malformed-json", b'{"model": "fast", "messages": [', 400, "invalid_json", None),
    ("not-an-object", b'["fast"]', 400, "invalid_json", None),
    ("missing-model", json.dumps({"messages": MSG}).encode(), 400, "missing_required_parameter", "model"),
    ("model-not-string", json.dumps({"model": 4, "messages": MSG}).encode(), 400, "invalid_type", "model"),
    ("missing-messages", json.dumps({"model": "fast"}).encode(), 400, "missing_required_parameter", "messages"),
    ("messages-not-array", json.dumps({"model": "fast", "messages": "hi"}).encode(), 400, "invalid_type", "messages"),
    ("message-without-role", json.dumps({"model": "fast", "messages": [{"content": "x"}]}).encode(),
     400, "invalid_type", "messages[0].role"),
    ("stream-not-bool", json.dumps({"model": "fast", "messages": MSG, "stream": "yes"}).encode(),
     400, "invalid_type", "stream"),
    ("unknown-model", json.dumps({"model": "gpt-does-not-exist", "messages": MSG}).encode(),
     404, "model_not_found", "model"),
    ("unknown-provider", json.dumps({"model": "nosuchprovider/x", "messages": MSG}).encode(),
     404, "model_not_found", "model"),
    ("oversized", json.dumps({"model": "fast", "messages": [{"role": "user", "content": "x" * 250_000}]}).encode(),
     413, "request_too_large", None),
]


@pytest.mark.parametrize("name,body,status,code,param", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_input_is_a_4xx_in_openai_shape_and_recorded(server, seen_responses, name, body, status, code, param):
    s = sid()
    r = httpx.post(server.proxy_url + "/chat/completions", content=body, timeout=30,
                   headers={**server.headers, "Content-Type": "application/json", "X-LLMLab-Session": s})
    seen_responses.append((dict(r.headers), r.text))
    assert r.status_code == status
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert (err["type"], err["code"], err["param"]) == ("invalid_request_error", code, param)
    assert err["message"]
    row = one_row(server, s)
    assert (row["status_code"], row["error_type"]) == (status, code)
    assert row["error_message"] == err["message"] and row["input_tokens"] is None


def test_bad_input_through_the_openai_client_raises_its_errors(client):
    with pytest.raises(openai.NotFoundError) as exc:
        client.chat.completions.create(model="missing-model", messages=MSG)
    assert exc.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as exc:
        client.embeddings.create(model="embed", input=[])
    assert exc.value.body["param"] == "input"


def test_unauthenticated_calls_are_refused(server):
    for method, path in (("POST", "/chat/completions"), ("POST", "/embeddings"), ("GET", "/models"),
                         ("GET", "/models/fast")):
        r = httpx.request(method, server.proxy_url + path, json={"model": "fast", "messages": MSG})
        assert r.status_code == 403, path
        assert r.json()["error"]["type"] == "permission_error"
    r = httpx.get(server.url + "llmlab/api/health", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 403


# -- upstream failures: passed through or 502/504, each recorded -------------------------------

def test_upstream_500_is_passed_through_and_recorded(server, client, seen_responses):
    s = sid()
    with pytest.raises(openai.InternalServerError) as exc:
        client.chat.completions.create(model="fast", messages=MSG, extra_headers={"X-LLMLab-Session": s},
                                       extra_body={"mock": {"id": s, "status": 500}})
    assert exc.value.status_code == 500 and exc.value.body["code"] == "mock_error"
    row = one_row(server, s)
    assert (row["status_code"], row["error_type"], row["error_message"]) == (500, "mock_error", "mock failure")


def test_upstream_hang_times_out_with_504(server, client):
    s = sid()
    with pytest.raises(openai.APIStatusError) as exc:
        client.chat.completions.create(model="fast", messages=MSG, extra_headers={"X-LLMLab-Session": s},
                                       extra_body={"mock": {"id": s, "hang": 10}})
    assert exc.value.status_code == 504 and exc.value.body["type"] == "timeout"
    row = one_row(server, s)
    assert (row["status_code"], row["error_type"]) == (504, "upstream_timeout")
    assert 1400 <= row["duration_ms"]


def test_upstream_unreachable_is_502(server, client):
    s = sid()
    with pytest.raises(openai.APIStatusError) as exc:
        client.chat.completions.create(model="unreachable", messages=MSG, extra_headers={"X-LLMLab-Session": s})
    assert exc.value.status_code == 502 and exc.value.body["code"] == "upstream_unreachable"
    assert one_row(server, s)["status_code"] == 502


def test_upstream_reset_mid_stream_is_recorded_as_error(server, client, upstream):
    s = sid()
    stream = client.chat.completions.create(
        model="fast", messages=MSG, stream=True, extra_headers={"X-LLMLab-Session": s},
        extra_body={"mock": {"id": s, "chunks": 5, "reset_after": 2}})
    got = []
    with pytest.raises(openai.APIError) as exc:
        for c in stream:
            got.append(c.choices[0].delta.content)
    assert len(got) == 2 and "closed the connection" in str(exc.value)
    row = one_row(server, s)
    assert (row["status_code"], row["error_type"], row["stream"]) == (502, "upstream_disconnected", True)
    assert row["ttft_ms"] is not None


def test_client_disconnect_mid_stream_closes_upstream_and_records_partial_call(server, upstream):
    s = sid()
    body = {"model": "fast", "messages": MSG, "stream": True,
            "mock": {"id": s, "chunks": 6, "chunk_delay": 0.4}}
    with httpx.stream("POST", server.proxy_url + "/chat/completions", json=body, timeout=30,
                      headers={**server.headers, "X-LLMLab-Session": s}) as r:
        assert r.status_code == 200
        first = next(r.iter_lines())
        assert first.startswith("data: ")
    row = one_row(server, s)
    assert (row["status_code"], row["error_type"], row["stream"]) == (499, "client_disconnected", True)
    assert row["output_tokens"] is None   # never reported: recorded as unknown, not as 0
    deadline = time.monotonic() + 10
    while not upstream.calls_by_id[s].get("disconnected") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert upstream.calls_by_id[s].get("disconnected"), "the upstream stream was not closed"


# -- health, secrets ---------------------------------------------------------------------------

def test_health_reports_store_journal_and_upstreams(server):
    h = server.health()
    assert h["status"] == "ok" and h["store"]["status"] == "ok"
    assert h["store"]["records_ingested"] > 0
    assert {"segments", "bytes", "oldest_age_s"} <= set(h["journal"])
    ups = {u["model_name"]: u for u in h["upstreams"]}
    assert ups["fast"]["route"] == "direct" and ups["claude"]["route"] == "litellm"
    assert ups["fast"]["key"] == "configured (E2E_PROVIDER_KEY)" and ups["fast"]["requests"] > 0
    assert ups["unreachable"]["errors"] >= 1
    assert PROVIDER_KEY not in json.dumps(h)
    # The garbage collector is set for the proxy once the server runs (proxy/heap.py): what
    # Jupyter, the extensions and litellm (this server routes "claude" through it) loaded is frozen.
    assert h["gc"]["tuned"] is True and h["gc"]["young_threshold"] == 10_000
    assert h["gc"]["frozen_objects"] > 100_000


def test_provider_key_echoed_by_upstream_is_scrubbed(server, client, seen_responses):
    s = sid()
    with pytest.raises(openai.AuthenticationError) as exc:
        client.chat.completions.create(model="fast", messages=MSG, extra_headers={"X-LLMLab-Session": s},
                                       extra_body={"mock": {"id": s, "echo_auth": True}})
    seen_responses.append(({}, json.dumps(exc.value.body)))
    assert "Incorrect API key provided" in exc.value.body["message"]
    assert PROVIDER_KEY not in exc.value.body["message"]
    assert PROVIDER_KEY not in one_row(server, s)["error_message"]


def test_zz_provider_key_never_in_database_log_or_responses(server, seen_responses):
    """Runs last in this module: everything above has been journaled, flushed and logged."""
    server.rows(expect=10**9, timeout=1.0)   # let the last flush land
    key = PROVIDER_KEY.encode()
    files = [server.store.db_path, server.log_path, *server.store.journal_dir.glob("*")]
    for f in files:
        assert key not in f.read_bytes(), f"provider key found in {f.name}"
    assert seen_responses
    for headers, body in seen_responses:
        assert PROVIDER_KEY not in body and PROVIDER_KEY not in json.dumps(headers)
