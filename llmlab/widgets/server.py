"""Where this Jupyter server is, for the empty state's "send your first request" snippet."""

from __future__ import annotations

import html
import os
from urllib.parse import urlsplit

# The proxy's built-in model: it answers without any network or key (DESIGN §4).
FIRST_MODEL = "llmlab/offline"


def server_url() -> str:
    """The server's root URL with its base_url, e.g. ``http://127.0.0.1:8888/lab/``.

    Under Voila the page's own URL is known (``VOILA_REQUEST_URL``, ``VOILA_BASE_URL``); in a
    JupyterLab kernel the server is found the way ``llmlab.client()`` finds it.
    """
    request = os.environ.get("VOILA_REQUEST_URL")
    if request:
        parts = urlsplit(request)
        base = os.environ.get("VOILA_BASE_URL") or "/"
        return f"{parts.scheme}://{parts.netloc}{base if base.endswith('/') else base + '/'}"
    from ..client import find_server
    from ..errors import ConfigError

    try:
        return find_server()["url"]
    except ConfigError:
        return "http://localhost:8888/"


def first_request_snippet(url: str | None = None) -> str:
    from ..client import PROXY_PATH

    base = (url or server_url()) + PROXY_PATH
    return f'''from openai import OpenAI

client = OpenAI(
    base_url="{base}",
    api_key="<your Jupyter token>",  # the token this server was started with
)
reply = client.chat.completions.create(
    model="{FIRST_MODEL}",
    messages=[{{"role": "user", "content": "Hello from llmlab!"}}],
    extra_headers={{"X-LLMLab-Project": "my-project"}},
)
print(reply.choices[0].message.content)'''


def empty_state_html(url: str | None = None) -> str:
    snippet = first_request_snippet(url)
    return (
        '<div class="llmlab-empty"><h2>No LLM calls recorded yet</h2>'
        '<p>Send a request through this server\'s OpenAI-compatible proxy and it shows up here '
        '(press <b>Refresh</b>, or turn on auto-refresh). From any Python with the '
        '<code>openai</code> package:</p>'
        f'<pre class="llmlab-snippet">{html.escape(snippet)}</pre>'
        '<p>In a notebook on this server, <code>llmlab.client()</code> returns the same client '
        'with the token and project filled in. To look around first, run <code>llmlab demo</code> '
        'to seed realistic sample usage.</p></div>'
    )
