"""``api/metrics`` end to end: a real ``jupyter server``, the official openai client, a local
provider on loopback; the scrape, parsed with prometheus_client's own parser, must count exactly
the calls, tokens and cost that were sent and stored."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import defaultdict

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from proxy_server import ProxyServer
from fixtures import upstream  # noqa: F401 - a shared fixture

pytestmark = pytest.mark.slow
PROVIDER_KEY = "sk-metrics-provider-key-91c4e2"


UPSTREAM_API_KEY = PROVIDER_KEY


@pytest.fixture(scope="module")
def server(tmp_path_factory, upstream):
    model_list = [
        {"model_name": "fast", "litellm_params": {
            "model": "openai/gpt-4o-mini", "api_base": upstream.base_url,
            "api_key": "os.environ/METRICS_PROVIDER_KEY"}},
        {"model_name": "no-price", "litellm_params": {
            "model": "openai/my-private-finetune", "api_base": upstream.base_url,
            "api_key": "os.environ/METRICS_PROVIDER_KEY"}},
    ]
    srv = ProxyServer(tmp_path_factory.mktemp("metrics-e2e"), model_list=model_list,
                      traits={"metrics_max_label_values": 3},
                      env={"METRICS_PROVIDER_KEY": PROVIDER_KEY}).start()
    yield srv
    srv.stop()


def scrape(server: ProxyServer) -> dict[str, list]:
    r = httpx.get(server.url + "llmlab/api/metrics", headers=server.headers, timeout=30)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    out: dict[str, list] = defaultdict(list)
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[s.name].append((s.labels, s.value))
    return out


def value(samples: dict, name: str, **labels) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(v for lab, v in samples.get(name, []) if all(lab.get(k) == x for k, x in labels.items()))


def test_metrics_need_the_token(server):
    r = httpx.get(server.url + "llmlab/api/metrics", timeout=10)
    assert r.status_code == 403
    r = httpx.get(server.url + "llmlab/api/metrics", headers={"Authorization": "Bearer wrong"},
                  timeout=10)
    assert r.status_code == 403
    assert "llmlab_requests_total" not in r.text


def test_scrape_counts_what_was_sent(server):
    client = server.client()
    sent = defaultdict(lambda: defaultdict(int))   # (model, project) -> kind -> tokens

    def chat(model, project, usage=None, stream=False, **mock):
        if usage:
            mock["usage"] = usage
        kw = dict(model=model, messages=[{"role": "user", "content": "hello"}],
                  extra_headers={"X-LLMLab-Project": project}, extra_body={"mock": mock})
        if stream:
            list(client.chat.completions.create(stream=True, **kw))
        else:
            client.chat.completions.create(**kw)
        if usage:
            t = sent[(model, project)]
            t["input"] += usage["prompt_tokens"] - usage.get("cached_tokens", 0)
            t["cache_read"] += usage.get("cached_tokens", 0)
            t["output"] += usage["completion_tokens"]
            t["reasoning"] += usage.get("reasoning_tokens", 0)

    # Order matters: the label cap (3) keeps the first three projects and models seen.
    for i in range(3):
        chat("fast", "alpha", {"prompt_tokens": 1000 + i, "completion_tokens": 50,
                               "cached_tokens": 200, "reasoning_tokens": 10})
    for _ in range(2):
        chat("fast", "beta", {"prompt_tokens": 300, "completion_tokens": 30}, stream=True, chunks=3)
    with pytest.raises(openai.InternalServerError):
        chat("fast", "gamma", status=500)
    chat("no-price", "alpha", {"prompt_tokens": 40, "completion_tokens": 4})
    client.chat.completions.create(model="llmlab/offline", messages=[{"role": "user", "content": "hi"}],
                                   extra_headers={"X-LLMLab-Project": "delta"})   # 4th: "other"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}],
                                       extra_headers={"X-LLMLab-Project": "alpha"})  # 4th model
    n_calls = 9
    rows = server.rows(expect=n_calls)
    assert len(rows) == n_calls

    m = scrape(server)
    req = "llmlab_requests_total"
    assert value(m, req) == n_calls
    assert value(m, req, model="fast", project="alpha", status_class="2xx") == 3
    assert value(m, req, model="fast", project="beta", status_class="2xx") == 2
    assert value(m, req, model="fast", project="gamma", status_class="5xx") == 1
    assert value(m, req, model="no-price", project="alpha", status_class="2xx") == 1
    assert value(m, req, model="llmlab/offline", project="other", status_class="2xx") == 1
    assert value(m, req, model="other", project="alpha", status_class="4xx") == 1
    assert value(m, "llmlab_request_errors_total") == 2
    assert value(m, "llmlab_request_errors_total", model="fast", project="gamma") == 1

    for (model, project), kinds in sent.items():
        for kind, n in kinds.items():
            assert value(m, "llmlab_tokens_total", model=model, project=project, kind=kind) == n, \
                (model, project, kind)
    assert value(m, "llmlab_tokens_total", model="fast", project="alpha", kind="cache_read") == 600
    assert value(m, "llmlab_tokens_total", model="fast", project="gamma") == 0

    # Cost: what the store says each call cost (priced by LiteLLM's table), summed per label.
    stored = defaultdict(float)
    for r in rows:
        if r["cost_usd"] is not None and r["model_requested"] == "fast":
            stored[r["project"]] += float(r["cost_usd"])
    assert stored["alpha"] > 0 and stored["beta"] > 0
    for project in ("alpha", "beta"):
        got = value(m, "llmlab_cost_usd_total", model="fast", project=project)
        assert got == pytest.approx(stored[project], rel=1e-9)
    assert value(m, "llmlab_cost_usd_total", model="no-price") == 0
    assert value(m, "llmlab_unpriced_requests_total", model="no-price", project="alpha") == 1

    # Histograms: every call has a duration; the two streams a time to first token.
    assert value(m, "llmlab_request_duration_seconds_count", model="fast") == 6
    assert value(m, "llmlab_request_duration_seconds_bucket", model="fast", le="+Inf") == 6
    assert value(m, "llmlab_time_to_first_token_seconds_count", model="fast") == 2
    durations = [float(r["duration_ms"]) / 1000 for r in rows if r["model_requested"] == "fast"]
    assert value(m, "llmlab_request_duration_seconds_sum", model="fast") == \
        pytest.approx(sum(durations), abs=1e-5 * len(durations))
    buckets = sorted(((float(lab["le"]), v) for lab, v in m["llmlab_request_duration_seconds_bucket"]
                      if lab["model"] == "fast"))
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:]))   # cumulative

    # The journal drains into usage.duckdb: the store's gauges say so.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = scrape(server)
        if value(m, "llmlab_records_flushed_total") >= n_calls and value(m, "llmlab_journal_segments") == 0:
            break
        time.sleep(0.2)
    assert value(m, "llmlab_records_flushed_total") == n_calls
    assert value(m, "llmlab_journal_segments") == 0 and value(m, "llmlab_journal_records") == 0
    assert value(m, "llmlab_flush_lag_seconds") == 0
    assert value(m, "llmlab_store_status", status="ok") == 1
    assert value(m, "llmlab_last_flush_timestamp_seconds") > 0
    assert value(m, "llmlab_alerts_total") == 0
    assert value(m, "llmlab_alert_webhook_deliveries_total", result="failed") == 0
    assert PROVIDER_KEY not in str(dict(m))


HOLD_DB = """
import duckdb, sys
con = duckdb.connect(sys.argv[1])          # read-write: nobody else can open the file now
print("holding", flush=True)
sys.stdin.read()                           # until the test closes our stdin
con.close()
"""


def test_backlog_and_flush_lag_while_the_store_is_locked(tmp_path):
    srv = ProxyServer(tmp_path / "locked", traits={"lock_timeout": 0.3}).start()
    try:
        client = srv.client()
        client.chat.completions.create(model="llmlab/offline", messages=[{"role": "user", "content": "a"}])
        srv.rows(expect=1)          # the table exists and the journal is empty again
        holder = subprocess.Popen([sys.executable, "-c", HOLD_DB, str(srv.store.db_path)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "holding"
            for i in range(3):
                client.chat.completions.create(model="llmlab/offline",
                                               messages=[{"role": "user", "content": f"b{i}"}])
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                m = scrape(srv)
                if value(m, "llmlab_store_status", status="locked") == 1 and \
                        value(m, "llmlab_flush_lag_seconds") > 0:
                    break
                time.sleep(0.2)
            assert value(m, "llmlab_store_status", status="locked") == 1
            assert value(m, "llmlab_store_status", status="ok") == 0
            assert value(m, "llmlab_journal_records") == 3
            assert value(m, "llmlab_journal_segments") >= 1 and value(m, "llmlab_journal_bytes") > 0
            assert value(m, "llmlab_flush_lag_seconds") > 0
            assert value(m, "llmlab_requests_total") == 4     # serving never stopped
        finally:
            holder.stdin.close()
            holder.wait(30)
        assert len(srv.rows(expect=4)) == 4
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            m = scrape(srv)
            if value(m, "llmlab_store_status", status="ok") == 1 and value(m, "llmlab_journal_segments") == 0:
                break
            time.sleep(0.2)
        assert value(m, "llmlab_flush_lag_seconds") == 0 and value(m, "llmlab_journal_records") == 0
        assert value(m, "llmlab_records_flushed_total") == 4
    finally:
        srv.stop()
