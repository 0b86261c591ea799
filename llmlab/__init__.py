"""llmlab: LLM usage and cost, recorded by a Jupyter proxy, queried from notebooks.

    import llmlab
    lab = llmlab.open()            # the store at $LLMLAB_HOME or <jupyter data dir>/llmlab
    lab.daily(since="2026-10-01", project="atlas")
    client = llmlab.client()       # an openai.OpenAI through the running Jupyter server
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import LLMLabError, QueryError, StoreError, StoreLockedError  # noqa: E402
from .query import Lab, open  # noqa: E402,A004
from .store import Store, UsageRecord  # noqa: E402

__all__ = [
    "__version__", "open", "Lab", "Store", "UsageRecord",
    "LLMLabError", "QueryError", "StoreError", "StoreLockedError",
]
