"""Tornado handlers of the llmlab server extension (thin I/O over ``llmlab.proxy``).

    base.py    LLMLabHandler: every error answered once, in OpenAI's shape
    proxy.py   /llmlab/v1/chat/completions, /v1/embeddings, /v1/models
    api.py     /llmlab/api/health
    metrics.py /llmlab/api/metrics (Prometheus text format)
    policy_api.py  /llmlab/api/keys, /api/budgets, /api/alerts (keys and budgets for the dashboard)
    keyauth.py     virtual-key (sk-llmlab-...) authentication, mixed into the proxy handlers only
    lean.py        the chat/embeddings routes for server-token API calls, without RequestHandler
"""

from .api import HealthHandler
from .metrics import MetricsHandler
from .policy_api import ROUTES as POLICY_ROUTES
from .proxy import ChatCompletionsHandler, EmbeddingsHandler, ModelHandler, ModelsHandler

# Routes relative to the server's base_url (ExtensionApp prefixes it).
ROUTES = [
    (r"llmlab/v1/chat/completions", ChatCompletionsHandler),
    (r"llmlab/v1/embeddings", EmbeddingsHandler),
    (r"llmlab/v1/models", ModelsHandler),
    (r"llmlab/v1/models/(.+)", ModelHandler),
    (r"llmlab/api/health", HealthHandler),
    (r"llmlab/api/metrics", MetricsHandler),
    *POLICY_ROUTES,
]

_LEAN = (ChatCompletionsHandler, EmbeddingsHandler)


def server_routes(application) -> list[tuple]:
    """ROUTES as the extension registers them: the hot POST routes go to handlers/lean.py,
    which serves API calls bearing the server's token itself and hands every other request
    to the handler class ROUTES names."""
    from .lean import lean_route

    return [(pattern, lean_route(handler), {"application": application})
            if handler in _LEAN else (pattern, handler) for pattern, handler in ROUTES]


__all__ = ["ROUTES", "server_routes", "ChatCompletionsHandler", "EmbeddingsHandler", "ModelsHandler",
           "ModelHandler", "HealthHandler", "MetricsHandler"]
