"""The proxy keeps serving while another process holds usage.duckdb; the records arrive once it
is released. Also: ``llmlab.client()`` finds this real server through its runtime file."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import pytest
from proxy_server import ProxyServer
from fixtures import upstream  # noqa: F401 - a shared fixture

import llmlab

pytestmark = pytest.mark.slow
HOLD_DB = """
import duckdb, sys
con = duckdb.connect(sys.argv[1])          # read-write: nobody else can open the file now
con.execute("SELECT count(*) FROM requests").fetchone()
print("holding", flush=True)
sys.stdin.read()                           # until the test closes our stdin
con.close()
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory, upstream):
    srv = ProxyServer(tmp_path_factory.mktemp("proxy-locked"), model_list=[
        {"model_name": "fast", "litellm_params": {"model": "openai/gpt-4o-mini",
                                                  "api_base": upstream.base_url}}],
        traits={"lock_timeout": 0.3}).start()
    yield srv
    srv.stop()


def test_llmlab_client_finds_the_server_and_detects_the_project(server, tmp_path, monkeypatch):
    repo = tmp_path / "checkout-folder"
    (repo / ".git").mkdir(parents=True)
    (repo / ".git" / "config").write_text(
        '[core]\n\tbare = false\n[remote "origin"]\n\turl = git@github.com:acme/billing-bot.git\n'
        '\tfetch = +refs/heads/*:refs/remotes/origin/*\n')
    notebook_dir = repo / "notebooks" / "analysis"
    notebook_dir.mkdir(parents=True)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(server.runtime_dir))
    monkeypatch.setenv("JPY_SESSION_NAME", str(notebook_dir / "explore.ipynb"))
    monkeypatch.delenv("LLMLAB_SERVER_URL", raising=False)
    session = uuid.uuid4().hex
    client = llmlab.client(session=session, tags=["nb"])
    assert str(client.base_url).rstrip("/") == server.proxy_url
    r = client.chat.completions.create(model="llmlab/offline",
                                       messages=[{"role": "user", "content": "hello"}])
    assert r.choices[0].message.content
    row = server.rows("session_id = ?", [session])[0]
    assert (row["project"], row["tags"]) == ("billing-bot", ["nb"])


def test_serving_continues_while_store_is_locked_and_records_arrive_after(server):
    health = server.health()
    assert health["store"]["status"] == "ok"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_DB, str(server.store.db_path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        run = uuid.uuid4().hex[:8]
        client = server.client()
        for i in range(12):
            kw = dict(model="fast", messages=[{"role": "user", "content": f"call {i}"}],
                      extra_headers={"X-LLMLab-Session": f"{run}-{i}"},
                      extra_body={"mock": {"usage": {"prompt_tokens": 100 + i, "completion_tokens": 5}}})
            if i % 2:
                text = "".join(c.choices[0].delta.content or "" for c in
                               client.chat.completions.create(stream=True, **kw) if c.choices)
            else:
                text = client.chat.completions.create(**kw).choices[0].message.content
            assert text.strip() == f"echo: call {i}"
        # The flusher met the lock: health and the log say the records wait in the journal.
        for _ in range(100):
            health = server.health()
            if health["store"]["status"] == "locked":
                break
            time.sleep(0.1)
        assert health["store"]["status"] == "locked" and health["status"] == "degraded"
        assert health["store"]["locked_by_pid"] == holder.pid
        assert health["journal"]["segments"] >= 1 and health["journal"]["bytes"] > 0
        log = server.log()
        assert "wait in the journal" in log and f"process {holder.pid}" in log
    finally:
        holder.stdin.close()
        holder.wait(10)
    rows = server.rows("session_id LIKE ?", [f"{run}-%"], expect=12, timeout=30)
    assert sorted(r["input_tokens"] for r in rows) == [100 + i for i in range(12)]
    assert len({r["session_id"] for r in rows}) == 12
    after = server.health()
    assert after["store"]["status"] == "ok" and after["store"]["locked_by_pid"] is None
