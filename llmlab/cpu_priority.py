"""The calling thread's CPU priority: the one place llmlab changes it.

Linux schedules threads on their own: each has its own nice value, which the threads it starts
inherit. Elsewhere a thread has none (the calls would renice the whole process), so nothing
changes there.
"""

from __future__ import annotations

import os
import sys
import threading

LOWEST = 19


def this_thread() -> int:
    """The calling thread's nice value (0 where threads have none)."""
    if sys.platform != "linux":
        return 0
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def set_this_thread(nice: int) -> None:
    """Set the calling thread's nice value (at most LOWEST). Raising priority needs privileges
    a user rarely has: then, like on other platforms, nothing changes."""
    if sys.platform != "linux":
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), min(nice, LOWEST))
    except OSError:
        pass
