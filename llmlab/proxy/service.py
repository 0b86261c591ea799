"""ProxyService: everything a proxied call needs, built once by the extension.

Handlers read it from ``settings["llmlab_proxy"]``. It owns the router, the three backends, the
pricer and this process's journal writer, and the seam for later policy features:

    service.hooks.append(hook)
    hook.before_forward(call)          may raise ProxyError (e.g. 429) to refuse; may be async
    hook.after_record(call, record)    sees every journaled record (budgets, metrics)
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

from ..errors import BadRequestError, ProxyError
from ..store import Store
from .call import Call
from .litellm_backend import LiteLLMBackend
from .offline import OfflineBackend
from .pricer import Pricer
from .routing import Route, Router
from .upstream import DirectBackend

SCRUBBED = "[redacted key]"


class ProxyService:
    def __init__(self, *, router: Router, store: Store, pricer: Pricer, body_mode: str = "off",
                 default_project: str | None = None, max_body_bytes: int = 32 << 20,
                 connect_timeout: float = 10.0, read_timeout: float = 600.0,
                 max_connections: int = 256, log: logging.Logger | None = None,
                 config_error: str | None = None):
        self.router = router
        self.config_error = config_error
        self.store = store
        self.pricer = pricer
        self.body_mode = body_mode
        self.default_project = default_project or None
        self.max_body_bytes = max_body_bytes
        self.log = log or logging.getLogger("llmlab.proxy")
        self.journal = store.journal()
        self.hooks: list[Any] = []
        self.direct = DirectBackend(connect_timeout=connect_timeout, read_timeout=read_timeout,
                                    max_connections=max_connections, scrub=self.scrub)
        self.litellm = LiteLLMBackend(read_timeout=read_timeout, scrub=self.scrub)
        self.offline = OfflineBackend()
        self._backends = {"direct": self.direct, "litellm": self.litellm, "offline": self.offline}
        self.stats: dict[str, dict[str, Any]] = {}
        self.journal_errors = 0

    # -- secrets ---------------------------------------------------------------------------
    def scrub(self, text: str) -> str:
        """Text with every configured provider key replaced (for messages, logs, records)."""
        if not text:
            return text
        for secret in self.router.models.secrets:
            if len(secret) >= 6 and secret in text:
                text = text.replace(secret, SCRUBBED)
        return text

    # -- routing ---------------------------------------------------------------------------
    def resolve(self, model: str, endpoint: str) -> Route:
        if self.config_error:
            raise ProxyError(f"llmlab's proxy configuration is broken, ask the server's operator: "
                             f"{self.config_error}", status=503, error_type="api_error",
                             code="config_error")
        route = self.router.resolve(model)
        if route.kind == "offline":
            wants_embedding = route.deployment.upstream_model.endswith("embedding")
            if wants_embedding != (endpoint == "embeddings"):
                other = "llmlab/offline" if wants_embedding else "llmlab/offline-embedding"
                raise BadRequestError(
                    f"The model `{model}` does not serve /v1/{endpoint}; use `{other}`.",
                    param="model", code="model_not_supported")
        return route

    def backend_for(self, route: Route):
        return self._backends[route.kind]

    def needs_litellm(self) -> bool:
        return any(d.kind == "litellm" for d in self.router.models.deployments)

    # -- hooks and recording ---------------------------------------------------------------
    async def before_forward(self, call: Call) -> None:
        for hook in self.hooks:
            fn = getattr(hook, "before_forward", None)
            if fn is not None:
                result = fn(call)
                if inspect.isawaitable(result):
                    await result

    def record(self, call: Call) -> None:
        """Journal the call's usage record (one write to the OS), once; never raises.

        Hooks see the record even when the journal write failed: the call happened and cost
        what it cost, so budgets must still settle it (and release its reservation). In an
        event loop they run just after the caller's current step (the one writing the answer),
        and the record they see is built then, off the answer's path."""
        if call.recorded:
            return
        call.recorded = True
        wants_record = [h.after_record for h in self.hooks if hasattr(h, "after_record")]
        try:
            self.journal.append(call.journal_line(self.pricer, self.body_mode))
        except Exception:  # noqa: BLE001 - the answer must still reach the client
            self.journal_errors += 1
            self.log.exception("llmlab: could not journal the usage record of %s", call.request_id)
        self._count(call)
        if not wants_record:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:
            self._after_record(call, wants_record)
        else:
            # Right after the handler's current step, which writes the answer: settling budgets
            # and counting metrics stay off the call's latency (reservations made before
            # forwarding keep concurrent calls within their budgets meanwhile).
            loop.call_soon(self._after_record, call, wants_record)

    def _after_record(self, call: Call, hooks) -> None:
        try:
            rec = call.usage_record(self.pricer, self.body_mode)
        except Exception:  # noqa: BLE001 - a record that cannot be built has no line either
            self.log.exception("llmlab: could not build the usage record of %s", call.request_id)
            rec = None
        for fn in hooks:
            try:
                fn(call, rec)
            except Exception:  # noqa: BLE001 - a hook must not break the proxy
                self.log.exception("llmlab: hook %r failed after recording", fn)

    def _count(self, call: Call) -> None:
        name = call.route.deployment.model_name if call.route else "(unrouted)"
        s = self.stats.get(name)
        if s is None:
            s = self.stats[name] = {"requests": 0, "errors": 0, "last_status": None, "last_error": None}
        s["requests"] += 1
        s["last_status"] = call.status
        if call.status >= 400 or call.error_type:
            s["errors"] += 1
            s["last_error"] = call.error_message

    # -- health ----------------------------------------------------------------------------
    def upstreams(self) -> list[dict]:
        out = []
        for dep in self.router.deployments():
            key = "none"
            if dep.api_key is not None:
                key = f"configured ({dep.api_key.source})"
            elif dep.key_missing:
                key = f"missing: environment variable {dep.api_key_env} is not set"
            stats = self.stats.get(dep.model_name, {})
            out.append({"model_name": dep.model_name, "model": dep.model, "provider": dep.provider,
                        "route": dep.kind, "api_base": dep.public_api_base, "key": key,
                        "requests": stats.get("requests", 0), "errors": stats.get("errors", 0),
                        "last_status": stats.get("last_status"),
                        "last_error": stats.get("last_error")})
        return out

    async def aclose(self) -> None:
        await self.direct.aclose()


def proxy_error_from(exc: BaseException) -> ProxyError:
    """Any failure as a ProxyError (unexpected ones become a 500 without internals)."""
    if isinstance(exc, ProxyError):
        return exc
    return ProxyError(f"internal error in the llmlab proxy ({exc.__class__.__name__}); "
                      "see the server log", status=500, error_type="api_error", code="internal_error")
