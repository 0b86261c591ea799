"""Virtual-key authentication for the proxy routes only.

``Authorization: Bearer sk-llmlab-...`` is checked against the keys the policy holds in memory
(llmlab/policy/hook.py). Only the handlers that mix this in accept such a key: every other
Jupyter route (contents, kernels, terminals, llmlab/api/...) sends it to Jupyter's identity
provider, which knows no such token and refuses it (403).
"""

from __future__ import annotations

from jupyter_server.auth import User

from ..errors import ProxyError
from ..policy.keys import looks_like_key


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


class VirtualKeyAuthMixin:
    """Put before the handler's base class. Sets ``self.llmlab_key`` for a key's request."""

    llmlab_key = None

    async def prepare(self):
        token = bearer_token(self.request.headers.get("Authorization"))
        policy = self.settings.get("llmlab_policy")
        if token is None or policy is None or not looks_like_key(token):
            return await super().prepare()
        self.check_request_host()
        try:
            key = await policy.authenticate(token)
        except ProxyError as err:
            self.current_user = self._jupyter_current_user = None
            self.set_header("WWW-Authenticate", 'Bearer realm="llmlab"')
            return self.write_openai_error(err)
        self.llmlab_key = key
        self.accept_header_credential(User(username=f"llmlab-key-{key.key_id}",
                                           name=key.name or key.key_id))
