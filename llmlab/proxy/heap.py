"""The server process's garbage collector, set for a proxy that allocates on every call.

A Jupyter server with JupyterLab, Voila and LiteLLM's price table loaded holds about 250,000
objects the cyclic garbage collector tracks. Measured under load (benchmarks/RESULTS.md, Proxy):
CPython's full collections scanned all of them, about 100 ms each, a dozen a minute at 1,000
calls/s: a tenth of the proxy's CPU and a 100 ms stall in every call then in flight. And with
64 calls in flight, each young collection (every 700 allocations) walked the same in-flight
objects again and again. Two process-wide settings fix both; ``LLMLabApp.tune_gc = False``
leaves the interpreter's defaults alone:

- ``gc.freeze()`` once startup is over: what the server loaded (modules, Jupyter's and the
  extensions' state, the price table) is never cyclic garbage, so later collections skip it.
  Called again by the threads that import late (the flusher's pyarrow, litellm), after their
  imports. Objects created later are collected as usual.
- a young-generation threshold of :data:`YOUNG_THRESHOLD` allocations instead of 700: most of a
  call's objects are freed by reference counting before a collection sees them.

Nothing here forks, so freezing copies nothing (the usual reason to freeze is fork's
copy-on-write); the cost is that cycles among objects frozen at startup are never reclaimed,
a bounded amount since that heap is made once.
"""

from __future__ import annotations

import gc
import logging
import threading

YOUNG_THRESHOLD = 10_000

_lock = threading.Lock()
_tuned = False


def tune(log: logging.Logger | None = None) -> None:
    """Raise the young threshold and freeze what startup made; later :func:`settle` calls
    freeze again. Call once, when the server has started."""
    global _tuned
    with _lock:
        _tuned = True
        young, middle, old = gc.get_threshold()
        if 0 < young < YOUNG_THRESHOLD:   # 0: collection switched off by someone; leave it
            gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    settle()
    if log is not None:
        log.debug("llmlab: %d objects frozen out of the garbage collector's scans; young "
                  "threshold %d", gc.get_freeze_count(), gc.get_threshold()[0])


def settle() -> None:
    """After a burst of long-lived allocations (imports): collect, then freeze what is left.
    Does nothing unless :func:`tune` was called (the operator may have turned it off)."""
    with _lock:
        if not _tuned:
            return
        gc.collect()   # so that no garbage is frozen
        gc.freeze()


def state() -> dict:
    """For api/health."""
    return {"tuned": _tuned, "frozen_objects": gc.get_freeze_count(),
            "young_threshold": gc.get_threshold()[0]}
