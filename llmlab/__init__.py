"""llmlab: LLM usage and cost, recorded by a Jupyter proxy, queried from notebooks.

    import llmlab
    lab = llmlab.open()            # the store at $LLMLAB_HOME or <jupyter data dir>/llmlab
    lab.daily(since="2026-10-01", project="atlas")
    client = llmlab.client()       # an openai.OpenAI through the running Jupyter server
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import LLMLabError, QueryError, StoreError, StoreLockedError  # noqa: E402
# Imported now so that defining client() below is final: a later `import llmlab.client` finds
# the module loaded and leaves this package's `client` attribute (the function) alone.
from . import client as _client_module  # noqa: E402


def client(project: str | None = None, **kwargs):
    """An ``openai.OpenAI`` through the running Jupyter server's llmlab proxy.

    ``project`` defaults to the notebook's git repository (origin's name, else the top-level
    folder) or folder name. Keyword arguments: ``client=``, ``user=``, ``session=``, ``tags=``
    (attribution headers) and anything ``openai.OpenAI`` accepts. See docs/users/proxy.md.
    """
    return _client_module.make_client(project, **kwargs)


# pandas and duckdb are loaded on first use (PEP 562), so commands such as `llmlab statusline`
# and the server's start-up do not pay for them.
_LAZY = {"open": ".query", "Lab": ".query", "Store": ".store", "UsageRecord": ".store"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'llmlab' has no attribute {name!r}")


def _jupyter_server_extension_points():
    from .extension import LLMLabApp

    return [{"module": "llmlab.extension", "app": LLMLabApp}]

__all__ = [
    "__version__", "open", "client", "Lab", "Store", "UsageRecord",
    "LLMLabError", "QueryError", "StoreError", "StoreLockedError",
]
