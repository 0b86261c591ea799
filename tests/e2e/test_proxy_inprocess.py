"""The extension inside pytest-jupyter's server (base_url ``/a%40b/``): routes join base_url,
every route needs the token, and an offline call is recorded with its body (store_bodies=on)."""

from __future__ import annotations

import json
import logging
import time

import pytest
from tornado.httpclient import HTTPClientError
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine
from jupyter_server.utils import url_path_join
from jupyter_server.auth import IdentityProvider, User
from traitlets.config import Config

from pytest_jupyter.jupyter_server import *  # noqa: F401,F403 - the jp_* fixtures, this module only

from llmlab.store import Store


@pytest.fixture
def jp_server_config(llmlab_home):
    return Config({"ServerApp": {"jpserver_extensions": {"llmlab": True}},
                   "LLMLabApp": {"store_bodies": "on", "flush_interval": 0.1,
                                 "default_project": "inproc"}})


def fetch(loop, jp_fetch, *parts, **kw):
    return loop.run_until_complete(jp_fetch(*parts, **kw))


def test_routes_are_under_base_url_and_answer(jp_asyncio_loop, jp_fetch, jp_base_url, jp_serverapp):
    assert jp_base_url == "/a%40b/"
    r = fetch(jp_asyncio_loop, jp_fetch, "llmlab", "v1", "models")
    assert r.effective_url.split("127.0.0.1", 1)[1].split("/", 1)[1].startswith("a%40b/llmlab/v1/models")
    ids = [m["id"] for m in json.loads(r.body)["data"]]
    assert ids == ["llmlab/offline", "llmlab/offline-embedding"]
    health = json.loads(fetch(jp_asyncio_loop, jp_fetch, "llmlab", "api", "health").body)
    assert health["body_storage"] == "on" and health["default_project"] == "inproc"


def test_offline_chat_is_recorded_with_its_body(jp_asyncio_loop, jp_fetch, llmlab_home, jp_serverapp):
    body = {"model": "llmlab/offline", "messages": [{"role": "user", "content": "count my words"}]}
    r = fetch(jp_asyncio_loop, jp_fetch, "llmlab", "v1", "chat", "completions", method="POST",
              body=json.dumps(body), headers={"X-LLMLab-User": "ana"})
    answer = json.loads(r.body)
    request_id = r.headers["X-LLMLab-Request-Id"]
    assert float(r.headers["X-LLMLab-Overhead-Ms"]) >= 0
    store = Store(llmlab_home)
    row = None
    for _ in range(100):
        if store.db_path.exists():
            with store.read() as con:
                cur = con.execute("SELECT * FROM requests WHERE request_id = ?", [request_id])
                got = cur.fetchone()
                if got:
                    row = dict(zip([d[0] for d in cur.description], got))
                    break
        time.sleep(0.1)
    assert row is not None
    assert json.loads(row["request_body"]) == body
    assert json.loads(row["response_body"])["choices"][0]["message"]["content"] == \
        answer["choices"][0]["message"]["content"]
    assert (row["project"], row["user_id"], row["cost_usd"]) == ("inproc", "ana", 0)
    assert row["input_tokens"] == answer["usage"]["prompt_tokens"]


def test_errors_keep_openai_shape(jp_asyncio_loop, jp_fetch, jp_serverapp):
    with pytest.raises(HTTPClientError) as exc:
        fetch(jp_asyncio_loop, jp_fetch, "llmlab", "v1", "embeddings", method="POST",
              body=json.dumps({"model": "llmlab/offline", "input": "x"}))
    assert exc.value.code == 400
    err = json.loads(exc.value.response.body)["error"]
    assert (err["code"], err["param"]) == ("model_not_supported", "model")
    with pytest.raises(HTTPClientError) as exc:
        fetch(jp_asyncio_loop, jp_fetch, "llmlab", "v1", "models", headers={"Authorization": ""})
    assert exc.value.code == 403
    assert json.loads(exc.value.response.body)["error"]["type"] == "permission_error"


class TestBrokenConfig:
    """A broken routing file keeps Jupyter up; the proxy answers every call with the reason."""

    @pytest.fixture
    def jp_server_config(self, tmp_path):
        bad = tmp_path / "config.yaml"
        bad.write_text("model_list:\n  - model_name: x\n")
        return Config({"ServerApp": {"jpserver_extensions": {"llmlab": True}},
                       "LLMLabApp": {"config_file": str(bad)}})

    def test_calls_get_503_with_the_reason_and_health_says_so(self, jp_asyncio_loop, jp_fetch, jp_serverapp):
        with pytest.raises(HTTPClientError) as exc:
            fetch(jp_asyncio_loop, jp_fetch, "llmlab", "v1", "chat", "completions", method="POST",
                  body=json.dumps({"model": "llmlab/offline", "messages": [{"role": "user", "content": "x"}]}))
        assert exc.value.code == 503
        err = json.loads(exc.value.response.body)["error"]
        assert err["code"] == "config_error" and "model_list[0]: litellm_params.model" in err["message"]
        health = json.loads(fetch(jp_asyncio_loop, jp_fetch, "llmlab", "api", "health").body)
        assert health["status"] == "error" and "litellm_params.model" in health["config_error"]


def test_hooks_can_refuse_before_forwarding_and_see_every_record(jp_asyncio_loop, jp_fetch, jp_serverapp):
    """The seam later policy features (budgets, rate limits, keys) plug into."""
    from llmlab.errors import ProxyError

    seen = []

    class Budget:
        async def before_forward(self, call):
            if call.attribution.project == "broke":
                raise ProxyError("monthly budget exhausted", status=429,
                                 error_type="rate_limit_error", code="budget_exceeded")

        def after_record(self, call, record):
            seen.append((record.project, record.status_code, record.error_type))

    jp_serverapp.web_app.settings["llmlab_proxy"].hooks.append(Budget())
    body = json.dumps({"model": "llmlab/offline", "messages": [{"role": "user", "content": "x"}]})
    fetch(jp_asyncio_loop, jp_fetch, "llmlab", "v1", "chat", "completions", method="POST", body=body)
    with pytest.raises(HTTPClientError) as exc:
        fetch(jp_asyncio_loop, jp_fetch, "llmlab", "v1", "chat", "completions", method="POST",
              body=body, headers={"X-LLMLab-Project": "broke"})
    assert exc.value.code == 429
    assert json.loads(exc.value.response.body)["error"]["code"] == "budget_exceeded"
    assert seen == [("inproc", 200, None), ("broke", 429, "budget_exceeded")]


def test_voila_is_kept_off_the_mathjax_cdn(jp_serverapp):
    # None (not absent) makes Voila use its bundled MathJax instead of cdnjs.
    settings = jp_serverapp.web_app.settings
    assert "mathjax_url" in settings and settings["mathjax_url"] is None
    assert settings["mathjax_config"] is None


class TestOperatorMathjax:
    @pytest.fixture
    def jp_server_config(self):
        return Config({"ServerApp": {"jpserver_extensions": {"llmlab": True},
                                     "tornado_settings": {"mathjax_url": "/static/mj.js"}}})

    def test_an_operators_mathjax_setting_wins(self, jp_serverapp):
        settings = jp_serverapp.web_app.settings
        assert settings["mathjax_url"] == "/static/mj.js"
        assert settings["mathjax_config"] is None


# -- the server token's fast path (llmlab/handlers/base.py) ---------------------------------------
def _status(loop, jp_fetch, *parts, **kw) -> int:
    try:
        return fetch(loop, jp_fetch, *parts, **kw).code
    except HTTPClientError as exc:
        return exc.code


def test_the_server_token_passes_as_bearer_or_token_and_nothing_else_does(
        jp_asyncio_loop, jp_fetch, jp_serverapp):
    token = jp_serverapp.identity_provider.token
    assert token
    for header, expected in ((f"Bearer {token}", 200), (f"token {token}", 200),
                             (f"BEARER {token}", 200), (f"Bearer {token}x", 403),
                             (f"Bearer {token[:-1]}", 403), ("Bearer ", 403), ("", 403),
                             (f"Basic {token}", 403)):
        got = _status(jp_asyncio_loop, jp_fetch, "llmlab", "v1", "models",
                      headers={"Authorization": header})
        assert got == expected, header
    # A POST authenticated by the token needs no XSRF cookie, as with Jupyter's own path.
    body = {"model": "llmlab/offline", "messages": [{"role": "user", "content": "hi"}]}
    assert _status(jp_asyncio_loop, jp_fetch, "llmlab", "v1", "chat", "completions", method="POST",
                   body=json.dumps(body), headers={"Authorization": f"Bearer {token}"}) == 200
    # The host check still applies (DNS rebinding protection).
    assert _status(jp_asyncio_loop, jp_fetch, "llmlab", "v1", "models",
                   headers={"Authorization": f"Bearer {token}", "Host": "evil.example"}) == 403


def test_remembered_hosts_never_let_another_host_in(jp_asyncio_loop, jp_fetch, jp_serverapp):
    auth = {"Authorization": f"Bearer {jp_serverapp.identity_provider.token}"}
    for _ in range(2):   # the second time from memory (handlers/base.py check_host)
        assert _status(jp_asyncio_loop, jp_fetch, "llmlab", "v1", "models",
                       headers={**auth, "Host": "localhost:8888"}) == 200
        assert _status(jp_asyncio_loop, jp_fetch, "llmlab", "v1", "models",
                       headers={**auth, "Host": "evil.example:8888"}) == 403
    assert jp_serverapp.web_app.settings["llmlab_allowed_hosts"] >= {"localhost:8888"}
    assert "evil.example:8888" not in jp_serverapp.web_app.settings["llmlab_allowed_hosts"]


def test_jupyters_access_log_sees_failed_proxied_calls_only(jp_asyncio_loop, jp_fetch, jp_serverapp):
    from jupyter_server.prometheus.metrics import HTTP_REQUEST_DURATION_SECONDS

    def count(status: int) -> float:
        return sum(s.value for m in HTTP_REQUEST_DURATION_SECONDS.collect() for s in m.samples
                   if s.name.endswith("_count") and s.labels["status_code"] == str(status)
                   and s.labels["handler"].startswith("llmlab.handlers."))

    def one_of_each():
        body = {"model": "llmlab/offline", "messages": [{"role": "user", "content": "hi"}]}
        fetch(jp_asyncio_loop, jp_fetch, "llmlab", "v1", "chat", "completions", method="POST",
              body=json.dumps(body))
        assert _status(jp_asyncio_loop, jp_fetch, "llmlab", "v1", "chat", "completions",
                       method="POST", body="{") == 400

    # As `jupyter server --log-level=INFO` configures it (traitlets' logging config): the logger
    # itself at DEBUG, not propagating, its console handler at the log level. (pytest-jupyter
    # sends the log to pytest's handlers instead; restored below.)
    log = jp_serverapp.log
    saved = log.handlers[:], log.propagate, log.level
    console = logging.NullHandler()
    console.setLevel(logging.INFO)
    log.handlers, log.propagate = [console], False
    log.setLevel(logging.DEBUG)
    try:
        ok, bad = count(200), count(400)
        one_of_each()
        # A success is counted by llmlab's own metrics (api/metrics), not by Jupyter's log.
        assert (count(200), count(400)) == (ok, bad + 1)
        console.setLevel(logging.DEBUG)   # --log-level=DEBUG: successes are logged again
        one_of_each()
        assert (count(200), count(400)) == (ok + 1, bad + 2)
    finally:
        log.handlers, log.propagate = saved[0], saved[1]
        log.setLevel(saved[2])


def test_only_server_token_api_calls_skip_the_handler(jp_asyncio_loop, jp_fetch, jp_serverapp,
                                                      monkeypatch):
    """handlers/lean.py serves a POST bearing the server's token and nothing else: every other
    request reaches the regular handler, which answers it as Jupyter would."""
    from llmlab.handlers.lean import LeanExchange

    served = []
    start = LeanExchange.start
    monkeypatch.setattr(LeanExchange, "start", lambda self: (served.append(self.endpoint),
                                                             start(self)))
    token = jp_serverapp.identity_provider.token
    chat = json.dumps({"model": "llmlab/offline", "messages": [{"role": "user", "content": "x"}]})
    emb = json.dumps({"model": "llmlab/offline-embedding", "input": "x"})

    def post(path, body, **headers):
        return _status(jp_asyncio_loop, jp_fetch, "llmlab", "v1", *path.split("/"), method="POST",
                       body=body, headers={"Authorization": f"Bearer {token}", **headers})

    assert post("chat/completions", chat) == 200 and served == ["chat/completions"]
    assert post("embeddings", emb) == 200 and served[-1] == "embeddings"
    served.clear()
    assert post("chat/completions", chat, Authorization=f"Bearer {token}x") == 403
    assert post("chat/completions", chat, Authorization="") == 403
    assert post("chat/completions", chat, Host="evil.example") == 403
    assert post("chat/completions", chat, Origin="http://evil.example") == 200   # Jupyter decides
    assert post("chat/completions", chat, Cookie="a=b") == 200   # the token still counts
    assert _status(jp_asyncio_loop, jp_fetch, "llmlab", "v1", "chat", "completions") == 405
    assert served == []


def test_the_fast_path_answers_with_jupyters_api_headers_and_counts_as_activity(
        jp_asyncio_loop, jp_fetch, jp_serverapp):
    settings = jp_serverapp.web_app.settings
    settings.pop("llmlab_csp", None)
    before = settings.get("api_last_activity")
    chat = json.dumps({"model": "llmlab/offline", "messages": [{"role": "user", "content": "x"}]})
    lean = fetch(jp_asyncio_loop, jp_fetch, "llmlab", "v1", "chat", "completions", method="POST",
                 body=chat)
    assert settings["api_last_activity"] != before
    # Jupyter's own API handler (not llmlab's) for the reference headers.
    jupyter = fetch(jp_asyncio_loop, jp_fetch, "api", "status")
    for name in ("Content-Security-Policy", "X-Content-Type-Options"):
        assert lean.headers[name] == jupyter.headers[name], name
    assert lean.headers["Content-Type"] == "application/json"
    assert json.loads(lean.body)["object"] == "chat.completion"
    stream = fetch(jp_asyncio_loop, jp_fetch, "llmlab", "v1", "chat", "completions",
                   method="POST", body=json.dumps({**json.loads(chat), "stream": True}))
    assert stream.headers["Content-Type"] == "text/event-stream"
    assert stream.body.rstrip().endswith(b"data: [DONE]")


def test_the_fast_path_keeps_one_user_and_leaves_cookies_to_jupyter(
        jp_asyncio_loop, jp_fetch, jp_serverapp):
    token = jp_serverapp.identity_provider.token
    for _ in range(2):
        fetch(jp_asyncio_loop, jp_fetch, "llmlab", "v1", "models",
              headers={"Authorization": f"Bearer {token}"})
    user = jp_serverapp.web_app.settings["llmlab_token_user"]
    assert user.username
    # A cookie (a browser) goes through JupyterHandler.prepare: a bogus one is not a login.
    assert _status(jp_asyncio_loop, jp_fetch, "llmlab", "v1", "models",
                   headers={"Authorization": "", "Cookie": "username-x=bogus"}) == 403
    assert _status(jp_asyncio_loop, jp_fetch, "llmlab", "v1", "models",
                   headers={"Authorization": f"Bearer {token}", "Cookie": "a=b"}) == 200


class HeaderNameIdentityProvider(IdentityProvider):
    """A stand-in for JupyterHub's provider: the user comes from a header; tokens do not count."""

    def get_user(self, handler):
        name = handler.request.headers.get("X-Test-User")
        return User(username=name) if name else None


class TestOtherIdentityProvider:
    """Under another IdentityProvider (JupyterHub's, a custom one) the fast path stands aside."""

    @pytest.fixture
    def jp_server_config(self):
        return Config({"ServerApp": {"jpserver_extensions": {"llmlab": True},
                                     "identity_provider_class": HeaderNameIdentityProvider}})

    def test_that_provider_decides(self, jp_asyncio_loop, jp_fetch, jp_serverapp):
        token = jp_serverapp.identity_provider.token
        # The server's token alone is not enough for this provider; its own header is.
        assert _status(jp_asyncio_loop, jp_fetch, "llmlab", "v1", "models",
                       headers={"Authorization": f"Bearer {token}"}) == 403
        assert _status(jp_asyncio_loop, jp_fetch, "llmlab", "v1", "models",
                       headers={"Authorization": "", "X-Test-User": "ana"}) == 200
        # Nor does it open the proxy's fast path (handlers/lean.py): that provider decides.
        chat = json.dumps({"model": "llmlab/offline", "messages": [{"role": "user", "content": "x"}]})
        assert _status(jp_asyncio_loop, jp_fetch, "llmlab", "v1", "chat", "completions",
                       method="POST", body=chat, headers={"Authorization": f"Bearer {token}"}) == 403


def test_tornado_tries_the_fast_paths_before_jupyters_routes(jp_serverapp):
    from tornado.routing import _CallableAdapter

    from llmlab.handlers.lean import LeanRoute, route_fast_paths_first

    web_app = jp_serverapp.web_app
    assert route_fast_paths_first(web_app) == 2          # chat and embeddings
    assert route_fast_paths_first(web_app) == 2          # idempotent: still one copy in front
    first = web_app.default_router.rules[0].target.rules
    assert len(first) == 2 and all(issubclass(r.target, LeanRoute) for r in first)
    assert not any(type(r.target) is type(web_app.default_router.rules[0].target)
                   for r in web_app.default_router.rules[1:])
    request = HTTPServerRequest(
        start_line=RequestStartLine("POST", url_path_join(jp_serverapp.base_url,
                                                          "llmlab/v1/chat/completions"), "HTTP/1.1"),
        headers=HTTPHeaders({"Host": "localhost"}), connection=_NoConnection())
    assert isinstance(web_app.default_router.find_handler(request), _CallableAdapter)


class _NoConnection:
    context = None
