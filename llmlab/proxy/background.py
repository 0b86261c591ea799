"""The server's bulk background work gives way to its event loop.

Measured (benchmarks/RESULTS.md, Proxy): with the proxy on one CPU, calls made while the flusher
moved the journal into DuckDB (every 5 s, ~0.3 s) took 4-9 ms instead of ~1.3 ms, which set the
p99 of the whole run. Not the GIL (a shorter switch interval changed nothing): the CPU, shared
by the event loop, the flusher thread and DuckDB's worker threads. Two settings of the server
process, applied by the extension unless ``LLMLabApp.background_priority`` is False, cut the
slow calls about fourfold:

- each background thread that works in bulk (the flusher, the scheduled Claude Code import)
  lowers its own CPU priority to the lowest (nice 19; Linux schedules threads on their own, and
  the threads it starts inherit it), so the scheduler runs the event loop first;
- DuckDB in the server runs its queries on the calling thread (``threads = 1`` on the process's
  lease host): worker threads of its own would run at normal priority beside the event loop.
  A flush of a large backlog takes longer; nothing waits on it.
"""

from __future__ import annotations

from .. import cpu_priority

_enabled = False


def enable() -> None:
    """Turn the settings on for this process (the server; never a notebook or the CLI)."""
    global _enabled
    from ..store import lease

    _enabled = True
    lease.set_host_threads(1)


def disable() -> None:
    """Back to DuckDB's defaults (the extension stops; threads already lowered stay so)."""
    global _enabled
    from ..store import lease

    _enabled = False
    lease.set_host_threads(None)


def lower_this_thread() -> None:
    """Give the calling thread (and the threads it starts) the lowest CPU priority, if enabled
    and the platform allows it (llmlab/cpu_priority.py); otherwise nothing."""
    if _enabled:
        cpu_priority.set_this_thread(cpu_priority.LOWEST)
