"""The proxy's logic, independent of tornado: routing, backends, usage, recording.

    config.py           LiteLLM config.yaml model lists (aliases, api_base, os.environ/NAME keys)
    routing.py          model name -> Route (deployment + how to reach it)
    validation.py       request checks answered like OpenAI (400 + param)
    upstream.py         direct pass-through to OpenAI-compatible providers (pooled aiohttp)
    litellm_backend.py  other providers through litellm (imported lazily, off the event loop)
    offline.py          the built-in offline models
    sse.py              streamed answers: forward whole events, find usage, drop the usage chunk
    usage.py            additive token counts from OpenAI-shaped usage
    pricer.py           cost per call (PriceBook + config prices), memoised
    call.py             one call's state -> UsageRecord (attribution, bodies)
    bodies.py           body storage: off / on / redacted
    service.py          ProxyService: all of the above, built once; the hooks seam
    flusher.py          background thread: journal -> usage.duckdb
    heap.py             the process's garbage collector, set for per-call allocations
    background.py       bulk background threads at the lowest CPU priority; DuckDB on one thread

The tornado handlers in ``llmlab.handlers`` are thin I/O around this package.
"""

from .config import OFFLINE_CHAT, OFFLINE_EMBEDDING, ModelList, load_model_list
from .routing import Route, Router
from .service import ProxyService

__all__ = ["OFFLINE_CHAT", "OFFLINE_EMBEDDING", "ModelList", "load_model_list", "Route", "Router",
           "ProxyService"]
