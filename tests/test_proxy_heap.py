"""proxy/heap.py changes process-wide state, so each case runs in its own interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap


def run(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)


def test_settle_does_nothing_until_tuned_then_tune_freezes_and_raises_the_threshold():
    r = run("""
        import gc, json
        from llmlab.proxy import heap
        heap.settle()
        before = heap.state()
        heap.tune()
        tuned = heap.state()
        import decimal, fractions   # a late import, as the flusher's pyarrow
        heap.settle()
        print(json.dumps({"before": before, "tuned": tuned, "after": heap.state()}))
    """)
    assert r["before"] == {"tuned": False, "frozen_objects": 0, "young_threshold": 700}
    assert r["tuned"]["tuned"] is True and r["tuned"]["young_threshold"] == 10_000
    assert r["tuned"]["frozen_objects"] > 1_000
    assert r["after"]["frozen_objects"] >= r["tuned"]["frozen_objects"]


def test_tune_leaves_a_switched_off_collector_and_a_higher_threshold_alone():
    r = run("""
        import gc, json
        from llmlab.proxy import heap
        gc.set_threshold(0)
        heap.tune()
        off = gc.get_threshold()[0]
        gc.set_threshold(50_000)
        heap.tune()
        print(json.dumps({"off": off, "high": gc.get_threshold()[0]}))
    """)
    assert r == {"off": 0, "high": 50_000}


def test_garbage_made_before_tuning_is_collected_not_frozen():
    r = run("""
        import gc, json, weakref
        from llmlab.proxy import heap
        class Node: pass
        a, b = Node(), Node()
        a.other, b.other = b, a          # a cycle only the collector can free
        ref = weakref.ref(a)
        del a, b
        gc.disable()                     # so that nothing collects it before tune() does
        heap.tune()
        print(json.dumps({"freed": ref() is None}))
    """)
    assert r == {"freed": True}
