"""200 concurrent streams through a real server: each recorded exactly once, none mixed up."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from proxy_server import ProxyServer
from fixtures import upstream  # noqa: F401 - a shared fixture

pytestmark = pytest.mark.slow
N = 200


@pytest.fixture(scope="module")
def server(tmp_path_factory, upstream):
    srv = ProxyServer(tmp_path_factory.mktemp("proxy-concurrency"), model_list=[
        {"model_name": "fast", "litellm_params": {"model": "openai/gpt-4o-mini",
                                                  "api_base": upstream.base_url}}]).start()
    yield srv
    srv.stop()


def test_200_concurrent_streams_are_each_recorded_once_and_not_mixed_up(server, upstream):
    run = uuid.uuid4().hex[:8]

    async def one(client, i: int):
        session = f"{run}-{i:03d}"
        stream = await client.chat.completions.create(
            model="fast", stream=True,
            **({"stream_options": {"include_usage": True}} if i % 2 else {}),
            messages=[{"role": "user", "content": f"request number {i} of run {run}"}],
            extra_headers={"X-LLMLab-Session": session},
            extra_body={"mock": {"id": session, "chunks": 3 + i % 4,
                                 "usage": {"prompt_tokens": 1000 + i, "completion_tokens": 10 + i % 7,
                                           "cached_tokens": i % 3}}})
        text, usage = "", None
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
            if chunk.usage is not None:
                usage = chunk.usage
        return i, text, usage

    async def all_of_them():
        client = server.async_client()
        try:
            return await asyncio.gather(*(one(client, i) for i in range(N)))
        finally:
            await client.close()

    results = asyncio.run(all_of_them())
    for i, text, usage in results:
        assert text.strip() == f"echo: request number {i} of run {run}"   # its own answer
        if i % 2:
            assert usage is not None and usage.prompt_tokens == 1000 + i
        else:
            assert usage is None

    rows = server.rows("session_id LIKE ?", [f"{run}-%"], expect=N, timeout=60)
    sessions = [r["session_id"] for r in rows]
    assert len(rows) == N and len(set(sessions)) == N            # exactly once each
    assert len({r["request_id"] for r in rows}) == N
    for r in rows:
        i = int(r["session_id"].rsplit("-", 1)[1])
        assert r["status_code"] == 200 and r["stream"] is True and r["error_type"] is None
        assert r["cache_read_tokens"] == i % 3
        assert r["input_tokens"] == 1000 + i - i % 3
        assert r["output_tokens"] == 10 + i % 7
        assert r["total_tokens"] == 1000 + i + 10 + i % 7
        assert upstream.calls_by_id[r["session_id"]]["usage"]["prompt_tokens"] == 1000 + i
