"""Tornado handlers of the llmlab server extension (thin I/O over ``llmlab.proxy``).

    base.py    LLMLabHandler: every error answered once, in OpenAI's shape
    proxy.py   /llmlab/v1/chat/completions, /v1/embeddings, /v1/models
    api.py     /llmlab/api/health
"""

from .api import HealthHandler
from .proxy import ChatCompletionsHandler, EmbeddingsHandler, ModelHandler, ModelsHandler

# Routes relative to the server's base_url (ExtensionApp prefixes it).
ROUTES = [
    (r"llmlab/v1/chat/completions", ChatCompletionsHandler),
    (r"llmlab/v1/embeddings", EmbeddingsHandler),
    (r"llmlab/v1/models", ModelsHandler),
    (r"llmlab/v1/models/(.+)", ModelHandler),
    (r"llmlab/api/health", HealthHandler),
]

__all__ = ["ROUTES", "ChatCompletionsHandler", "EmbeddingsHandler", "ModelsHandler",
           "ModelHandler", "HealthHandler"]
