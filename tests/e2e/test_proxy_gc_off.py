"""``LLMLabApp.tune_gc = False`` leaves the server process's garbage collector as Python set it."""

from __future__ import annotations

import pytest
from proxy_server import ProxyServer

pytestmark = pytest.mark.slow


def test_tune_gc_false_keeps_the_interpreter_defaults(tmp_path):
    server = ProxyServer(tmp_path, traits={"tune_gc": False}).start()
    try:
        r = server.client().chat.completions.create(
            model="llmlab/offline", messages=[{"role": "user", "content": "hi"}])
        assert r.choices[0].message.content
        gc_state = server.health()["gc"]
        assert gc_state == {"tuned": False, "frozen_objects": 0, "young_threshold": 700}
    finally:
        server.stop()
