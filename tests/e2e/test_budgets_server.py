"""Keys, budgets, rate limits and alerts through a real ``jupyter server`` subprocess and the
official openai client; the only stand-in is the loopback upstream (tests/e2e/upstream.py)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import openai
import pytest
from proxy_server import ProxyServer
from upstream import Upstream
from fixtures import upstream  # noqa: F401 - a shared fixture
from webhook_receiver import WebhookReceiver

import llmlab

# Prices of the "priced" model: a call reporting 10 prompt + 5 completion tokens costs $0.02.
IN_PRICE, OUT_PRICE = 0.001, 0.002
CALL_USAGE = {"prompt_tokens": 10, "completion_tokens": 5}
CALL_COST = 10 * IN_PRICE + 5 * OUT_PRICE
# Budgets in these tests last 100 years (from 1970): no period can end in the middle of a test
# (a day or month budget would reset if a test ran across midnight UTC).
LONG, LONG_ID = "36500d", "3153600000s"


def _model_list(upstream: Upstream) -> list[dict]:
    return [{"model_name": "priced",
             "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": upstream.base_url},
             "model_info": {"input_cost_per_token": IN_PRICE, "output_cost_per_token": OUT_PRICE}}]


@pytest.fixture(scope="module")
def receiver():
    rx = WebhookReceiver().start()
    yield rx
    rx.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, upstream, receiver):
    srv = ProxyServer(tmp_path_factory.mktemp("budgets"), model_list=_model_list(upstream),
                      traits={"policy_reload_interval": 0.2, "alert_webhooks": receiver.url,
                              "alert_webhook_backoff": 0.1}).start()
    yield srv
    srv.stop()


def lab_of(srv: ProxyServer):
    return llmlab.open(srv.home)


def key_client(srv: ProxyServer, key: str, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.proxy_url, api_key=key, max_retries=0, timeout=60, **kw)


def chat(client, *, usage=CALL_USAGE, max_tokens=5, **kw):
    return client.chat.completions.create(
        model="priced", max_tokens=max_tokens, messages=[{"role": "user", "content": "hi"}],
        extra_body={"mock": {"usage": usage, **kw.pop("mock", {})}}, **kw)


def api(srv: ProxyServer, method: str, path: str, **kw) -> httpx.Response:
    return httpx.request(method, srv.url + "llmlab/api/" + path, headers=srv.headers, timeout=30, **kw)


def wait_until(fn, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got is not None if hasattr(got, "columns") else got:   # a DataFrame: not None
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def alerts_of(lab, budget_id: str, n: int):
    """lab.alerts() of one budget once it has ``n`` rows, else None."""
    df = lab.alerts(budget_id=budget_id)
    return df if len(df) == n else None


def server_budget(srv: ProxyServer, budget_id: str) -> dict | None:
    for b in api(srv, "GET", "budgets").json()["budgets"]:
        if b["budget_id"] == budget_id:
            return b
    return None


def cli(srv: ProxyServer, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import sys; from llmlab.cli import main; "
                           "sys.exit(main())", *args, "--home", str(srv.home)],
                          capture_output=True, text=True, timeout=120)


def test_a_keys_calls_are_attributed_to_its_project_and_client(server):
    out = cli(server, "keys", "create", "--project", "atlas", "--client", "acme", "--json")
    assert out.returncode == 0, out.stderr
    made = json.loads(out.stdout)
    key, key_id = made["key"], made["key_id"]
    assert key.startswith(f"sk-llmlab-{key_id}-")
    client = key_client(server, key)
    # Another process created it: the server notices within its reload interval.
    wait_until(lambda: _status_of(server, key) == 200, what="the server to load the new key")
    assert [m.id for m in client.models.list().data] == ["priced", "llmlab/offline",
                                                          "llmlab/offline-embedding"]
    tag = uuid.uuid4().hex[:8]
    # Headers naming another project or client do not move the bill: the key decides.
    r = chat(client, extra_headers={"X-LLMLab-Project": "other", "X-LLMLab-Client": "evil",
                                    "X-LLMLab-Session": tag})
    assert r.choices[0].message.content
    rows = server.rows("session_id = ?", [tag])
    assert [(x["key_id"], x["project"], x["client"]) for x in rows] == [(key_id, "atlas", "acme")]
    assert float(rows[0]["cost_usd"]) == pytest.approx(CALL_COST)
    # Streamed calls too.
    assert api(server, "PUT", "budgets", json={"scope": "key", "target": key_id,
                                               "limit_usd": 10, "period": LONG}).status_code == 200
    stream = client.chat.completions.create(
        model="priced", stream=True, messages=[{"role": "user", "content": "hi"}],
        extra_headers={"X-LLMLab-Session": tag + "-s"}, extra_body={"mock": {"usage": CALL_USAGE}})
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    rows = server.rows("session_id = ?", [tag + "-s"])
    assert [(x["key_id"], x["project"], x["client"], x["stream"]) for x in rows] == \
        [(key_id, "atlas", "acme", True)]
    # The budget was set after the first call: its spend was summed from the store/journal.
    live = server_budget(server, f"key:{key_id}:{LONG_ID}")
    assert live["spent_usd"] == pytest.approx(2 * CALL_COST) and live["reserved_usd"] == 0


def _status_of(srv: ProxyServer, key: str) -> int:
    r = httpx.post(srv.proxy_url + "/chat/completions", timeout=30,
                   headers={"Authorization": f"Bearer {key}"},
                   json={"model": "llmlab/offline", "messages": [{"role": "user", "content": "x"}]})
    return r.status_code


def test_revoked_expired_rotated_and_unknown_keys_get_401(server):
    lab = lab_of(server)
    revoked = lab.keys.create("atlas")
    expired = lab.keys.create("atlas", expires="2020-01-01")
    rotated = lab.keys.create("atlas")
    wait_until(lambda: _status_of(server, revoked.key) == 200, what="the new keys")
    # Through the REST route a change applies at once.
    assert api(server, "DELETE", f"keys/{revoked.key_id}").json()["status"] == "revoked"
    fresh = api(server, "POST", f"keys/{rotated.key_id}/rotate").json()["key"]
    assert _status_of(server, fresh) == 200
    for key, why in [(revoked.key, "revoked"), (expired.key, "expired"), (rotated.key, "not a valid"),
                     (f"sk-llmlab-{revoked.key_id}-wrongsecret", "not a valid"),
                     ("sk-llmlab-garbage", "not a valid")]:
        with pytest.raises(openai.AuthenticationError) as exc:
            key_client(server, key).chat.completions.create(
                model="llmlab/offline", messages=[{"role": "user", "content": "x"}])
        assert exc.value.status_code == 401
        err = exc.value.body
        assert err["code"] == "invalid_api_key" and why in err["message"], err
        assert key.split("-")[-1] not in err["message"]   # never echoes the secret
    # Revoked from another process (the CLI): refused once the server has reloaded.
    other = lab.keys.create("atlas")
    wait_until(lambda: _status_of(server, other.key) == 200, what="the key")
    assert cli(server, "keys", "revoke", other.key_id).returncode == 0
    wait_until(lambda: _status_of(server, other.key) == 401, what="the revocation")


NON_PROXY = [("GET", "api/contents"), ("POST", "api/contents"), ("GET", "api/kernels"),
             ("GET", "api/sessions"), ("GET", "api/terminals"), ("GET", "api/kernelspecs"),
             ("GET", "api/me"), ("GET", "api/status"), ("GET", "lab"),
             ("GET", "llmlab/api/health"), ("GET", "llmlab/api/metrics"),
             ("GET", "llmlab/api/keys"), ("POST", "llmlab/api/keys"),
             ("GET", "llmlab/api/budgets"), ("GET", "llmlab/api/alerts")]


def test_a_key_reaches_no_other_jupyter_route(server):
    key = lab_of(server).keys.create("atlas")
    wait_until(lambda: _status_of(server, key.key) == 200, what="the key")
    for method, path in NON_PROXY:
        with_token = httpx.request(method, server.url + path, headers=server.headers, timeout=30,
                                   json={} if method == "POST" else None)
        r = httpx.request(method, server.url + path, timeout=30,
                          headers={"Authorization": f"Bearer {key.key}"},
                          json={} if method == "POST" else None)
        # The route exists and Jupyter's token reaches it; the key does not.
        assert with_token.status_code not in (401, 403, 404), (path, with_token.status_code)
        assert r.status_code in (302, 403), (method, path, r.status_code)
        assert key.key not in r.text


def test_50_concurrent_calls_overshoot_a_hard_budget_by_at_most_one_call(server):
    lab = lab_of(server)
    limit = 1.0
    made = lab.keys.create("concurrency", budget_usd=limit, period=LONG, hard=True)
    budget_id = f"key:{made.key_id}:{LONG_ID}"
    wait_until(lambda: server_budget(server, budget_id), what="the budget")
    # Nearly exhaust it: one call costing $0.95.
    chat(key_client(server, made.key), usage={"prompt_tokens": 940, "completion_tokens": 5})

    async def burst():
        client = openai.AsyncOpenAI(base_url=server.proxy_url, api_key=made.key, max_retries=0,
                                    timeout=120)

        async def one(i):
            try:
                await client.chat.completions.create(
                    model="priced", max_tokens=5, messages=[{"role": "user", "content": f"n{i}"}],
                    extra_body={"mock": {"usage": CALL_USAGE, "hang": 0.3}})
                return "ok"
            except openai.RateLimitError as exc:
                return exc.body
        try:
            return await asyncio.gather(*(one(i) for i in range(50)))
        finally:
            await client.close()

    results = asyncio.run(burst())
    ok = [r for r in results if r == "ok"]
    refused = [r for r in results if r != "ok"]
    assert ok and refused and len(ok) + len(refused) == 50
    for err in refused:
        assert err["code"] == "insufficient_quota" and err["type"] == "insufficient_quota"
        assert budget_id in err["message"] and "resets at" in err["message"]
        assert "of its $1.00 hard limit" in err["message"]
    rows = server.rows("key_id = ? AND status_code = 200", [made.key_id], expect=1 + len(ok))
    spent = sum(float(r["cost_usd"]) for r in rows)
    assert len(rows) == 1 + len(ok)
    assert spent <= limit + CALL_COST + 1e-9
    live = server_budget(server, budget_id)
    assert live["spent_usd"] == pytest.approx(spent) and live["reserved_usd"] == 0
    assert lab.budgets().set_index("budget_id").loc[budget_id, "spent_usd"] == pytest.approx(spent)


def test_alerts_at_80_and_100_percent_fire_once_each_and_reach_the_webhook(server, receiver):
    lab = lab_of(server)
    project = "alerting-" + uuid.uuid4().hex[:6]
    budget_id = f"project:{project}:{LONG_ID}"
    assert api(server, "PUT", "budgets", json={"scope": "project", "target": project,
                                               "limit_usd": 0.1, "period": LONG}).status_code == 200
    client = server.client()
    before = len(receiver.delivered())

    def mine():
        return [b["alert"] for b in receiver.delivered()[before:] if b["alert"]["budget_id"] == budget_id]

    for _ in range(3):   # $0.06: 60%
        chat(client, extra_headers={"X-LLMLab-Project": project})
    assert server_budget(server, budget_id)["spent_usd"] == pytest.approx(3 * CALL_COST)
    chat(client, extra_headers={"X-LLMLab-Project": project})   # 80%
    first = wait_until(mine, what="the 80% alert")
    assert [a["threshold"] for a in first] == [0.8]
    for _ in range(4):   # 100% and beyond: a soft budget keeps answering
        chat(client, extra_headers={"X-LLMLab-Project": project})
    both = wait_until(lambda: len(mine()) >= 2 and mine(), what="the 100% alert")
    assert [a["threshold"] for a in both] == [0.8, 1.0]
    assert both[1]["spent_usd"] == pytest.approx(5 * CALL_COST) and both[1]["limit_usd"] == 0.1
    text = receiver.delivered()[before:][-1]["text"]
    assert project in text and "100%" in text
    saved = wait_until(lambda: alerts_of(lab, budget_id, 2), what="the alerts in the store")
    assert list(saved.columns) == ["alert_id", "budget_id", "scope", "target", "threshold",
                                   "spent_usd", "limit_usd", "period_start", "period_end",
                                   "fired_at", "message"]
    assert list(saved["threshold"]) == [1.0, 0.8]   # newest first
    via_api = api(server, "GET", "alerts", params={"budget_id": budget_id}).json()["alerts"]
    assert [a["alert_id"] for a in via_api] == list(saved["alert_id"])
    # More spend in the same period fires nothing more.
    chat(client, extra_headers={"X-LLMLab-Project": project})
    receiver.wait_seen(receiver.seen + 1, timeout=1.0)
    assert len(mine()) == 2


def test_rpm_and_tpm_limits_answer_429_with_retry_after(server):
    lab = lab_of(server)
    by_rpm = lab.keys.create("limits", rpm=2)
    by_tpm = lab.keys.create("limits", tpm=20)
    wait_until(lambda: _status_of(server, by_rpm.key) == 200, what="the key")   # 1st request
    client = key_client(server, by_rpm.key)
    chat(client)                                                                   # 2nd
    with pytest.raises(openai.RateLimitError) as exc:
        chat(client)
    assert exc.value.body["code"] == "rate_limit_exceeded" and "2 requests per minute" in \
        exc.value.body["message"]
    assert 1 <= int(exc.value.response.headers["retry-after"]) <= 60
    client = key_client(server, by_tpm.key)
    chat(client, usage={"prompt_tokens": 10, "completion_tokens": 5})   # 15 tokens
    chat(client, usage={"prompt_tokens": 10, "completion_tokens": 5})   # 30 >= 20 after this
    with pytest.raises(openai.RateLimitError) as exc:
        chat(client)
    assert "20 tokens per minute" in exc.value.body["message"]
    assert 1 <= int(exc.value.response.headers["retry-after"]) <= 60


def test_keys_are_stored_hashed(server):
    made = lab_of(server).keys.create("hashing", client="c")
    rotated = lab_of(server).keys.rotate(made.key_id)
    server.store.flush()
    secret = made.key.split("-", 3)[3]
    for path in [server.store.db_path, *server.home.rglob("*")]:
        if Path(path).is_file():
            data = Path(path).read_bytes()
            for k in (made.key, rotated.key):
                assert k.encode() not in data and k.split("-", 3)[3].encode() not in data, path
    assert secret not in server.log()
    with server.store.read() as con:
        stored = con.execute("SELECT secret_hash, prefix FROM api_keys WHERE key_id = ?",
                             [made.key_id]).fetchone()
    assert stored[0] == hashlib.sha256(rotated.key.encode()).hexdigest()
    assert rotated.key.startswith(stored[1]) and len(stored[1]) < len(rotated.key) - 32


def test_budgets_survive_a_restart(tmp_path, upstream, receiver):
    srv = ProxyServer(tmp_path / "restart", model_list=_model_list(upstream),
                      traits={"policy_reload_interval": 0.2, "alert_webhooks": receiver.url,
                              "flush_interval": 60.0}).start()
    try:
        lab = lab_of(srv)
        made = lab.keys.create("restart", budget_usd=0.05, period=LONG, hard=True)
        budget_id = f"key:{made.key_id}:{LONG_ID}"
        wait_until(lambda: server_budget(srv, budget_id), what="the budget")
        before = len(receiver.delivered())
        client = key_client(srv, made.key)
        chat(client)
        chat(client)    # $0.04 = 80%: one alert
        wait_until(lambda: len(receiver.delivered()) > before, what="the 80% alert")
        wait_until(lambda: len(lab.alerts(budget_id=budget_id)) == 1, what="the alert saved")
        srv.stop()      # records may still wait in the journal (flush_interval 60 s)
        srv.start()
        live = wait_until(lambda: server_budget(srv, budget_id), what="the budget after restart")
        assert live["spent_usd"] == pytest.approx(2 * CALL_COST)
        chat(key_client(srv, made.key))   # $0.06: over the limit, 100% fires once
        with pytest.raises(openai.RateLimitError) as exc:
            chat(key_client(srv, made.key))
        assert exc.value.body["code"] == "insufficient_quota"
        alerts = wait_until(lambda: alerts_of(lab, budget_id, 2), what="the 100% alert saved")
        assert sorted(alerts["threshold"]) == [0.8, 1.0]   # 80% was not fired again
        mine = [b for b in receiver.delivered()[before:] if b["alert"]["budget_id"] == budget_id]
        assert [b["alert"]["threshold"] for b in mine] == [0.8, 1.0]
        srv.stop()
        srv.start()
        with pytest.raises(openai.RateLimitError):
            chat(key_client(srv, made.key))
        assert lab.budgets().set_index("budget_id").loc[budget_id, "spent_usd"] == \
            pytest.approx(3 * CALL_COST)
    finally:
        srv.stop()


def test_rest_route_for_the_dashboard(server):
    r = api(server, "POST", "keys", json={"project": "dash", "client": "acme", "name": "ui",
                                          "models": ["priced"], "budget_usd": 3, "period": LONG})
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["key"].startswith("sk-llmlab-") and made["status"] == "active"
    listed = api(server, "GET", "keys").json()["keys"]
    assert made["key_id"] in {k["key_id"] for k in listed}
    assert made["key"] not in json.dumps(listed) and "secret_hash" not in json.dumps(listed)
    client = key_client(server, made["key"])
    chat(client)                                   # usable at once, no reload delay
    with pytest.raises(openai.PermissionDeniedError) as exc:   # not in the key's models
        client.chat.completions.create(model="llmlab/offline",
                                       messages=[{"role": "user", "content": "x"}])
    assert exc.value.body["code"] == "model_not_allowed"
    live = server_budget(server, f"key:{made['key_id']}:{LONG_ID}")
    assert live["spent_usd"] == pytest.approx(CALL_COST) and live["thresholds"] == [0.8, 1.0]
    bad = api(server, "PUT", "budgets", json={"scope": "team", "target": "x", "limit_usd": 1})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    assert "scope" in bad.json()["error"]["message"]
    assert api(server, "POST", "keys", json={"client": "x"}).status_code == 400
    gone = api(server, "DELETE", f"budgets/key:{made['key_id']}:{LONG_ID}")
    assert gone.status_code == 204
    assert server_budget(server, f"key:{made['key_id']}:{LONG_ID}") is None
    assert api(server, "DELETE", "budgets/key:nothing:day").status_code == 400
    assert httpx.get(server.url + "llmlab/api/keys", timeout=30).status_code == 403
