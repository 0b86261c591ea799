"""The proxy's parts without a server: usage extraction, SSE filtering, bodies, pricing,
validation, the error shape, attribution and the offline model."""

from __future__ import annotations

import asyncio
import json
import logging
from decimal import Decimal

import pytest

from llmlab.errors import BadRequestError, ProxyError
from llmlab.handlers.base import as_proxy_error, error_body, logs_debug
from llmlab.proxy.bodies import StreamAssembler, redact, request_body_for_storage, response_body_for_storage
from llmlab.proxy.call import (
    Attribution, Call, apply_body_attribution, attribution_from_headers, llmlab_headers,
)
from llmlab.proxy.config import load_model_list
from llmlab.proxy.offline import OfflineBackend
from llmlab.proxy.pricer import Pricer
from llmlab.proxy.routing import Router
from llmlab.proxy.sse import SSEFilter
from llmlab.proxy.usage import tokens_from_usage
from llmlab.proxy.validation import check_chat, check_embeddings, parse_json_body
from llmlab.pricing import bundled_table

# -- usage ------------------------------------------------------------------------------------


def test_openai_usage_becomes_additive_columns():
    t = tokens_from_usage({"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500,
                           "prompt_tokens_details": {"cached_tokens": 1000},
                           "completion_tokens_details": {"reasoning_tokens": 250}})
    assert (t.input_tokens, t.cache_read_tokens, t.cache_write_tokens) == (200, 1000, 0)
    assert (t.output_tokens, t.reasoning_tokens, t.total_tokens) == (300, 250, 1500)
    assert t.cache_write_5m_tokens is None and t.cache_write_1h_tokens is None


def test_litellm_anthropic_usage_separates_cache_reads_and_writes():
    t = tokens_from_usage({"prompt_tokens": 150, "completion_tokens": 7,
                           "prompt_tokens_details": {"cached_tokens": 30, "cache_creation_tokens": 20},
                           "cache_creation_input_tokens": 20, "cache_read_input_tokens": 30,
                           "cache_creation_token_details": {"ephemeral_5m_input_tokens": 5,
                                                            "ephemeral_1h_input_tokens": 15}})
    assert (t.input_tokens, t.cache_read_tokens, t.cache_write_tokens, t.output_tokens) == (100, 30, 20, 7)
    assert (t.cache_write_5m_tokens, t.cache_write_1h_tokens, t.total_tokens) == (5, 15, 157)


@pytest.mark.parametrize("usage", [None, "x", {}, {"total_tokens": 5}, {"prompt_tokens": "9"}])
def test_usage_without_counts_is_unknown_not_zero(usage):
    assert tokens_from_usage(usage) is None


def test_embeddings_and_deepseek_usage():
    assert tokens_from_usage({"prompt_tokens": 42, "total_tokens": 42}).total_tokens == 42
    t = tokens_from_usage({"prompt_tokens": 100, "completion_tokens": 1, "prompt_cache_hit_tokens": 64})
    assert (t.input_tokens, t.cache_read_tokens) == (36, 64)


# -- SSE --------------------------------------------------------------------------------------

def _chunk(content=None, usage=None, choices=True, finish=None):
    c = {"id": "c1", "object": "chat.completion.chunk", "model": "m-2024"}
    c["choices"] = [{"index": 0, "delta": {"content": content} if content else {},
                     "finish_reason": finish}] if choices else []
    c["usage"] = usage
    return b"data: " + json.dumps(c).encode() + b"\n\n"


USAGE = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
STREAM = _chunk("Hel") + _chunk("lo") + _chunk(finish="stop") + _chunk(usage=USAGE, choices=False) \
    + b"data: [DONE]\n\n"


@pytest.mark.parametrize("split", [1, 7, 50, len(STREAM)])
def test_sse_filter_forwards_whole_events_whatever_the_packet_boundaries(split):
    f = SSEFilter(keep_usage_chunk=False)
    out = b"".join(f.feed(STREAM[i:i + split]) for i in range(0, len(STREAM), split)) + f.end()
    events = [e for e in out.split(b"\n\n") if e]
    assert len(events) == 3                          # the usage chunk is dropped, [DONE] held back
    assert all(b'"usage": {' not in e for e in events)
    assert f.usage == USAGE and f.model == "m-2024" and f.done and f.events == 4


def test_sse_filter_keeps_usage_chunk_when_asked_and_handles_crlf():
    f = SSEFilter(keep_usage_chunk=True)
    out = f.feed(STREAM.replace(b"\n", b"\r\n"))
    assert out.count(b"data: ") == 4 and f.usage == USAGE


def test_sse_filter_drops_litellm_style_usage_chunk_with_empty_delta():
    litellm_last = b'data: {"choices":[{"index":0,"delta":{}}],"usage":{"prompt_tokens":3,"completion_tokens":1}}\n\n'
    f = SSEFilter(keep_usage_chunk=False)
    assert f.feed(litellm_last) == b"" and f.usage["prompt_tokens"] == 3
    g = SSEFilter(keep_usage_chunk=False)   # usage riding on a content chunk: content wins
    assert g.feed(_chunk("x", usage=USAGE)) != b"" and g.usage == USAGE


def test_sse_filter_notes_error_events_and_keeps_comments():
    f = SSEFilter(keep_usage_chunk=False)
    out = f.feed(b": keep-alive\n\n" + b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n')
    assert out.startswith(b": keep-alive\n\n") and f.error["message"] == "overloaded"


def test_sse_filter_assembles_the_stream_for_body_storage():
    f = SSEFilter(keep_usage_chunk=False, assemble=True)
    f.feed(STREAM)
    body = f.assembler.body()
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Hello"}
    assert body["choices"][0]["finish_reason"] == "stop" and body["usage"] == USAGE


def test_stream_assembler_merges_tool_call_deltas():
    a = StreamAssembler()
    a.feed({"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": "call_1", "function": {"name": "get_weather", "arguments": '{"ci'}}]}}]})
    a.feed({"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "function": {"arguments": 'ty": "Oslo"}'}}]}, "finish_reason": "tool_calls"}]})
    call = a.body()["choices"][0]["message"]["tool_calls"][0]
    assert call["id"] == "call_1" and call["function"] == {"name": "get_weather", "arguments": '{"city": "Oslo"}'}


# -- bodies -----------------------------------------------------------------------------------

REQUEST = {"model": "fast", "temperature": 0.2, "messages": [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": [{"type": "text", "text": "Describe"},
                                 {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
    {"role": "assistant", "tool_calls": [{"id": "t1", "type": "function",
                                          "function": {"name": "lookup", "arguments": '{"q": "secret"}'}}]}]}


def test_redacted_bodies_keep_structure_and_drop_content():
    r = request_body_for_storage(REQUEST, "redacted")
    assert r["model"] == "fast" and r["temperature"] == 0.2
    assert r["messages"][0] == {"role": "system", "content": "[redacted: 14 chars]"}
    parts = r["messages"][1]["content"]
    assert parts[0] == {"type": "text", "text": "[redacted: 8 chars]"}
    assert parts[1]["type"] == "image_url" and "AAAA" not in json.dumps(parts[1])
    fn = r["messages"][2]["tool_calls"][0]["function"]
    assert fn["name"] == "lookup" and "secret" not in fn["arguments"]
    resp = response_body_for_storage({"id": "x", "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": "Oslo is cold"}}],
                                      "usage": USAGE}, "redacted")
    assert resp["choices"][0]["message"]["content"] == "[redacted: 12 chars]" and resp["usage"] == USAGE


def test_body_modes_off_and_on():
    assert request_body_for_storage(REQUEST, "off") is None
    assert request_body_for_storage(REQUEST, "on") is REQUEST
    emb = response_body_for_storage({"data": [{"index": 0, "embedding": [0.1] * 1536}]}, "on")
    assert emb["data"][0]["embedding"] == {"dimensions": 1536}
    assert redact(["a", 1, None]) == ["[redacted: 1 chars]", 1, None]


# -- pricing ----------------------------------------------------------------------------------

def _dep(models, name):
    return Router(models, environ={}).resolve(name).deployment


def test_price_from_litellm_table_overrides_and_config(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model_list:\n"
                    "  - {model_name: fast, litellm_params: {model: openai/gpt-4o-mini, api_base: 'http://127.0.0.1:1/v1'}}\n"
                    "  - model_name: tuned\n    litellm_params: {model: openai/tuned-1, api_base: 'http://127.0.0.1:1/v1'}\n"
                    "    model_info: {input_cost_per_token: 0.000001, output_cost_per_token: 0.000003}\n"
                    "  - {model_name: mystery, litellm_params: {model: openai/mystery-model, api_base: 'http://127.0.0.1:1/v1'}}\n")
    models = load_model_list(path, environ={})
    pricer = Pricer({"mystery": {"input_cost_per_token": "0.5", "output_cost_per_token": 1}})
    t = tokens_from_usage({"prompt_tokens": 1000, "completion_tokens": 100,
                           "prompt_tokens_details": {"cached_tokens": 400}})
    table = bundled_table()["gpt-4o-mini"]
    expected = (600 * Decimal(str(table["input_cost_per_token"])) + 400 * Decimal(str(table["cache_read_input_token_cost"]))
                + 100 * Decimal(str(table["output_cost_per_token"])))
    cost, source = pricer.cost_of(_dep(models, "fast"), "gpt-4o-mini-2024-07-18", t)
    assert cost == expected and source.startswith("litellm:")
    cost, source = pricer.cost_of(_dep(models, "tuned"), None, t)
    assert (cost, source) == (Decimal("0.001300000000"), "config")  # 1000*1e-6 (cache at input rate) + 100*3e-6
    cost, source = pricer.cost_of(_dep(models, "mystery"), None, t)
    assert (cost, source) == (Decimal("600.000000000000"), "override")
    unpriced = Pricer().cost_of(_dep(models, "mystery"), "mystery-model", t)
    assert unpriced == (None, None)                                       # NULL, never 0
    assert Pricer().cost_of(_dep(models, "llmlab/offline"), None, t)[0] == 0


# -- validation and the error shape -----------------------------------------------------------

@pytest.mark.parametrize("raw,code", [(b"", "invalid_json"), (b"{", "invalid_json"), (b"3", "invalid_json"),
                                      (b"\xff\xfe", "invalid_json"), (b"x" * 101, "request_too_large")])
def test_parse_json_body_errors(raw, code):
    with pytest.raises(BadRequestError) as exc:
        parse_json_body(raw, 100)
    assert exc.value.code == code and exc.value.status == (413 if code == "request_too_large" else 400)


def test_check_chat_and_embeddings():
    assert check_chat({"model": "m", "messages": [{"role": "user", "content": "x"}],
                       "stream": True, "stream_options": {"include_usage": True}}) == ("m", True, True)
    assert check_chat({"model": "m", "messages": [{"role": "user"}], "stream": None}) == ("m", False, False)
    with pytest.raises(BadRequestError, match="stream_options"):
        check_chat({"model": "m", "messages": [{"role": "user"}], "stream_options": 1})
    assert check_embeddings({"model": "e", "input": [[1, 2], "x", 3]}) == "e"
    for bad, param in (({"model": "e"}, "input"), ({"model": "e", "input": {}}, "input"),
                       ({"model": "e", "input": [True]}, "input[0]"), ({"model": " ", "input": "x"}, "model")):
        with pytest.raises(BadRequestError) as exc:
            check_embeddings(bad)
        assert exc.value.param == param


def test_error_body_is_openai_shaped():
    body = json.loads(error_body(BadRequestError("bad", param="model", code="invalid_type")))
    assert body == {"error": {"message": "bad", "type": "invalid_request_error", "param": "model",
                              "code": "invalid_type"}}
    from tornado.web import HTTPError

    e = as_proxy_error(HTTPError(405), 405)
    assert (e.status, e.error_type) == (405, "invalid_request_error")
    e = as_proxy_error(RuntimeError("internal detail /srv/secret"), 500)
    assert e.status == 500 and "secret" not in e.message
    assert as_proxy_error(HTTPError(403), 403).message.startswith("Forbidden")


# -- attribution ------------------------------------------------------------------------------

def test_headers_win_over_body_metadata_and_default_project():
    headers = llmlab_headers({"X-LLMLab-Project": "atlas", "X-LLMLab-Tags": "a, b,,c",
                              "Authorization": "Bearer t", "x-llmlab-client": ""})
    attr = attribution_from_headers(headers, "default")
    apply_body_attribution(attr, headers, {"user": "u1", "metadata": {
        "project": "ignored", "client": "acme", "session_id": "s9", "tags": ["x"], "run": 3}}, "default")
    assert (attr.project, attr.client, attr.user_id, attr.session_id) == ("atlas", "acme", "u1", "s9")
    assert attr.tags == ["a", "b", "c"] and attr.metadata == {"run": 3}
    plain = attribution_from_headers({}, "default")
    apply_body_attribution(plain, {}, {}, "default")
    assert plain.project == "default" and plain.metadata is None
    with pytest.raises(BadRequestError):
        apply_body_attribution(Attribution(), {}, {"metadata": "x"}, None)
    with pytest.raises(BadRequestError):
        apply_body_attribution(Attribution(), {}, {"user": 5}, None)


def test_call_record_of_a_failed_call(tmp_path):
    call = Call("/v1/chat/completions", Attribution(project="p"))
    call.model_requested = "nope"
    call.fail(ProxyError("boom sk-secret-123456", status=502, code="upstream_error"),
              lambda s: s.replace("sk-secret-123456", "[redacted key]"))
    rec = call.to_record(Pricer(), "off")
    assert (rec.status_code, rec.error_type, rec.error_message) == (502, "upstream_error", "boom [redacted key]")
    assert rec.input_tokens is None and rec.cost_usd is None and rec.project == "p"
    assert rec.duration_ms >= 0 and rec.ended_at >= rec.started_at


# -- the offline model ------------------------------------------------------------------------

def test_offline_stream_and_completion_agree():
    models = load_model_list(None, environ={})
    dep = Router(models, environ={}).resolve("llmlab/offline").deployment
    body = {"messages": [{"role": "user", "content": "Hello there, offline friend"}]}
    backend = OfflineBackend()

    async def run():
        reply = await backend.complete(None, dep, "chat/completions", body)
        stream = await backend.stream(None, dep, "chat/completions", body)
        f = SSEFilter(keep_usage_chunk=True)
        out = b""
        async for data in stream.chunks():
            out += f.feed(data)
        return reply, f, out

    reply, f, out = asyncio.run(run())
    text = reply.data["choices"][0]["message"]["content"]
    assert "Hello there, offline friend" in text
    streamed = "".join(json.loads(e[6:])["choices"][0]["delta"].get("content", "")
                       for e in out.split(b"\n\n") if e and json.loads(e[6:])["choices"])
    assert streamed == text and f.usage == reply.data["usage"] and f.done
    assert reply.data["usage"]["prompt_tokens"] > 0 and reply.data["usage"]["completion_tokens"] > 10


# -- the journal line -------------------------------------------------------------------------

def _calls():
    models = load_model_list(None, [{"model_name": "fast", "litellm_params": {
        "model": "openai/gpt-4o-mini", "api_base": "http://u:p@127.0.0.1:1/v1?q=1"}}], environ={})
    router = Router(models, environ={})
    ok = Call("/v1/chat/completions", Attribution(project="p", tags=["a"], metadata={"k": "é"}))
    ok.route, ok.model_requested, ok.stream, ok.ttft_s = router.resolve("fast"), "fast", True, 0.0123
    ok.usage = {"prompt_tokens": 120, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 20}}
    ok.reported_model = "gpt-4o-mini-2024-07-18"
    ok.request_body = REQUEST
    ok.response_body = {"choices": [{"message": {"role": "assistant", "content": "hi"}}]}
    failed = Call("/v1/embeddings", Attribution())
    failed.fail(BadRequestError("bad", code="invalid_json"))
    offline = Call("/v1/chat/completions", Attribution(user_id="u"))
    offline.route = router.resolve("llmlab/offline")
    offline.usage = {"prompt_tokens": 3, "completion_tokens": 1}
    return [ok, failed, offline]


@pytest.mark.parametrize("mode", ["off", "on", "redacted"])
def test_fast_journal_line_equals_the_usage_records_own(mode):
    """The proxy writes Call.journal_line() (no dataclass on the hot path); it must be exactly
    what UsageRecord.to_json_line() would have written."""
    pricer = Pricer()
    for call in _calls():
        call.t_end = call.t0 + 0.05
        fast = call.journal_line(pricer, mode)
        slow = call.to_record(pricer, mode).to_json_line()
        assert json.loads(fast) == json.loads(slow)
        assert fast.endswith(b"\n") and fast.count(b"\n") == 1
        # Hooks get the record from the parts the line was made of.
        assert call.usage_record(pricer, mode) == call.to_record(pricer, mode)


def test_a_record_prepared_before_the_answer_takes_the_answer_in():
    """The proxy encodes the request's columns while the upstream works (prepare_record);
    what the answer brings afterwards still lands in the line, as in the record."""
    pricer = Pricer()
    for call in _calls():
        status, usage, model, error = call.status, call.usage, call.reported_model, call.error_type
        call.status, call.usage, call.reported_model, call.error_type = 200, None, None, None
        call.prepare_record("on")
        call.status, call.usage, call.reported_model, call.error_type = status, usage, model, error
        call.t_end = call.t0 + 0.05
        line = json.loads(call.journal_line(pricer, "on"))
        assert line == json.loads(call.to_record(pricer, "on").to_json_line())
        assert line["status_code"] == status and line.get("error_type") == error
        assert ("total_tokens" in line) == (usage is not None)


def test_request_ids_are_random_version_4_uuids():
    import uuid

    from llmlab.proxy.call import new_request_id

    ids = {new_request_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(uuid.UUID(i).version == 4 and uuid.UUID(i).variant == uuid.RFC_4122 for i in ids)


def test_logs_debug_asks_the_handlers_not_the_loggers_level():
    parent = logging.getLogger("llmlab-test-logs-debug")
    child = logging.getLogger("llmlab-test-logs-debug.child")
    handler = logging.NullHandler()
    parent.addHandler(handler)
    parent.propagate = False   # away from the root logger's handlers (pytest's among them)
    try:
        parent.setLevel(logging.DEBUG)
        handler.setLevel(logging.INFO)   # how traitlets configures Jupyter's log
        assert parent.isEnabledFor(logging.DEBUG) and not logs_debug(parent)
        assert not logs_debug(child)
        handler.setLevel(logging.NOTSET)   # a handler without a level takes everything
        assert logs_debug(parent) and logs_debug(child)
        child.propagate = False   # the parent's handler is then out of reach
        assert not logs_debug(child)
        parent.setLevel(logging.INFO)   # the logger itself refuses DEBUG
        assert not logs_debug(parent)
    finally:
        parent.removeHandler(handler)
        child.propagate = True
