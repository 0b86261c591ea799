"""``llmlab demo``: realistic, deterministic, idempotent, written through the journal."""

from __future__ import annotations

import json
from datetime import date

import pytest

import llmlab
from llmlab.demo import generate, seed_demo
from llmlab.pricing import default_pricebook
from llmlab.store import Store

END = date(2026, 10, 31)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("demo") / "store")
    first = seed_demo(store, days=90, seed=7, end=END, progress=False)
    return store, first, llmlab.open(store.home)


def test_seeds_through_the_journal_and_a_second_run_adds_nothing(demo):
    store, first, lab = demo
    assert first["generated"] > 5000 and first["inserted"] == first["generated"]
    assert first["already_present"] == 0
    with store.read() as con:  # it went through the flusher, not straight into the table
        assert con.execute("SELECT sum(inserted) FROM _llmlab_flushes").fetchall()[0][0] == first["generated"]
    again = seed_demo(store, days=90, seed=7, end=END, progress=False)
    assert again == {"generated": first["generated"], "inserted": 0,
                     "already_present": first["generated"]}
    assert lab.totals().loc[0, "requests"] == first["generated"]


def test_deterministic_for_a_seed(tmp_path):
    a = [r.to_json_line() for r in generate(days=20, seed=3, end=END)]
    b = [r.to_json_line() for r in generate(days=20, seed=3, end=END)]
    c = [r.to_json_line() for r in generate(days=20, seed=4, end=END)]
    assert a == b and len(a) > 500
    assert a != c
    assert not {json.loads(x)["request_id"] for x in a} & {json.loads(x)["request_id"] for x in c}
    # Two stores seeded alike hold the same rows.
    s1, s2 = Store(tmp_path / "one"), Store(tmp_path / "two")
    seed_demo(s1, days=20, seed=3, end=END, progress=False)
    seed_demo(s2, days=20, seed=3, end=END, progress=False)
    q = "SELECT * EXCLUDE (metadata, request_body, response_body) FROM requests ORDER BY request_id"
    assert llmlab.open(s1.home).sql(q).equals(llmlab.open(s2.home).sql(q))


def test_breadth_projects_clients_models_providers(demo):
    _, _, lab = demo
    assert len(lab.distinct("project")) >= 5
    assert len(lab.distinct("client")) >= 3
    priced = lab.sql("""SELECT model, provider, min(pricing_source) AS src, count(*) AS n
                        FROM requests WHERE cost_usd IS NOT NULL GROUP BY ALL""")
    assert len(priced) >= 8
    assert priced.provider.nunique() >= 4
    assert priced.src.str.startswith("litellm:").all()  # LiteLLM's bundled table
    book = default_pricebook()
    assert all(book.lookup(m)[0] is not None for m in priced.model)
    # And one self-hosted model without a price, reported as unpriced rather than free.
    unpriced = lab.by_model().query("unpriced > 0")
    assert len(unpriced) >= 1 and (unpriced.cost_usd == 0).all()


def test_calls_look_like_real_traffic(demo):
    _, _, lab = demo
    f = lab.sql("""SELECT
        count(*) FILTER (WHERE stream) AS streamed, count(*) FILTER (WHERE NOT stream) AS plain,
        count(*) FILTER (WHERE status_code >= 400) AS errors,
        count(DISTINCT status_code) FILTER (WHERE status_code >= 400) AS error_kinds,
        count(*) FILTER (WHERE cache_read_tokens > 0) AS cache_reads,
        count(*) FILTER (WHERE cache_write_tokens > 0) AS cache_writes,
        count(*) FILTER (WHERE reasoning_tokens > 0) AS reasoning,
        count(*) FILTER (WHERE ttft_ms IS NOT NULL AND stream) AS ttft,
        count(*) FILTER (WHERE endpoint = '/v1/embeddings') AS embeddings,
        count(*) FILTER (WHERE total_tokens <> input_tokens + cache_read_tokens
                                               + cache_write_tokens + output_tokens) AS bad_totals,
        count(*) FILTER (WHERE reasoning_tokens > output_tokens) AS bad_reasoning
        FROM requests""").iloc[0]
    assert f.streamed > 0 and f.plain > 0 and f.ttft > 0 and f.embeddings > 0
    assert 0 < f.errors < 0.1 * lab.totals().loc[0, "requests"] and f.error_kinds >= 3
    assert f.cache_reads > 0 and f.cache_writes > 0 and f.reasoning > 0
    assert f.bad_totals == 0 and f.bad_reasoning == 0  # additive token columns (DESIGN §3)
    # Only models that have them get cache writes and reasoning tokens.
    assert set(lab.sql("SELECT DISTINCT provider FROM requests WHERE cache_write_tokens > 0").provider) \
        == {"anthropic"}
    assert set(lab.sql("SELECT DISTINCT model FROM requests WHERE reasoning_tokens > 0").model) \
        <= {"gpt-5-mini", "o4-mini"}


def test_weekday_and_business_hour_rhythm(demo):
    _, _, lab = demo
    days = lab.daily()
    weekday = days[days.date.dt.weekday < 5].requests.mean()
    weekend = days[days.date.dt.weekday >= 5].requests.mean()
    assert weekday > 3 * weekend
    hours = lab.sql("SELECT hour(started_at) AS h, count(*) AS n FROM requests GROUP BY 1")
    peak = hours.set_index("h").n.sort_index()
    assert peak.loc[10:17].sum() > 0.6 * peak.sum()
    assert len(days) == 90 and days.date.max().date() == END


def test_a_few_stored_conversations(demo):
    _, _, lab = demo
    bodies = lab.sql("SELECT request_body, response_body FROM requests WHERE request_body IS NOT NULL")
    assert 1 <= len(bodies) <= 200
    for req, resp in zip(bodies.request_body, bodies.response_body):
        req, resp = json.loads(req), json.loads(resp)
        assert req["messages"][-1]["role"] == "user" and req["messages"][-1]["content"]
        assert resp["choices"][0]["message"]["content"]


def test_progress_bar(tmp_path, capsys):
    seed_demo(Store(tmp_path / "s"), days=3, seed=1, end=END, progress=True)
    assert "demo: journaling" in capsys.readouterr().err
