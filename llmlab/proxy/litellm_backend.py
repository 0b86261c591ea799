"""Providers that do not speak OpenAI's API (Anthropic, Gemini, Bedrock...), through litellm.

litellm takes seconds to import, so it is imported in a worker thread, once, the first time a
call needs it (or at startup when the model list routes anything here); the event loop never
waits on the import. Its answers come back in OpenAI's shape and are serialised as such.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import threading
from typing import Any, AsyncIterator, Callable

from ..errors import UpstreamError
from .backends import EMBEDDINGS, Reply, UpstreamStream, error_type_for
from .config import Deployment

# Client-supplied fields that must never steer where a call goes or which key it uses.
_UNSAFE_PARAMS = {"model", "metadata", "api_key", "api_base", "base_url", "api_version",
                  "stream", "stream_options", "mock", "custom_llm_provider", "litellm_params"}
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode


def _import_litellm():
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    mod = importlib.import_module("litellm")
    mod.suppress_debug_info = True
    mod.telemetry = False
    return mod


class LiteLLMBackend:
    name = "litellm"

    def __init__(self, *, read_timeout: float, scrub: Callable[[str], str]):
        self.read_timeout = read_timeout
        self.scrub = scrub
        self._module = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._started = False

    @property
    def loaded(self) -> bool:
        return self._module is not None

    def preload(self) -> None:
        """Start importing litellm in a background thread (returns at once)."""
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._load, name="llmlab-litellm-import", daemon=True).start()

    def _load(self) -> None:
        from . import heap

        try:
            self._module = _import_litellm()
            heap.settle()   # litellm's modules and tables: long-lived, never garbage
        except BaseException as exc:  # noqa: BLE001 - reported to every waiting call
            self._error = exc
        finally:
            self._done.set()

    async def module(self):
        if self._module is not None:
            return self._module
        self.preload()
        await asyncio.get_running_loop().run_in_executor(None, self._done.wait)
        if self._module is None:
            raise UpstreamError(f"litellm could not be imported: {self._error!r}", status=500,
                                error_type="api_error", code="litellm_unavailable")
        return self._module

    def _kwargs(self, dep: Deployment, body: dict, stream: bool) -> dict[str, Any]:
        kw = {k: v for k, v in body.items() if k not in _UNSAFE_PARAMS}
        kw.update(dep.params)
        kw["model"] = dep.model
        if dep.api_base:
            kw["api_base"] = dep.api_base
        if dep.api_key is not None:
            kw["api_key"] = dep.api_key.reveal()
        timeout = dep.params.get("stream_timeout" if stream else "timeout") or self.read_timeout
        kw["timeout"] = float(timeout)
        return kw

    def _error_from(self, exc: BaseException, dep: Deployment) -> UpstreamError:
        timeout_cls = getattr(self._module, "Timeout", ())
        if isinstance(exc, (asyncio.TimeoutError,) + ((timeout_cls,) if timeout_cls else ())):
            return UpstreamError(f"{dep.model} did not answer in time: {self.scrub(str(exc))[:500]}",
                                 status=504, error_type="timeout", code="upstream_timeout")
        conn_cls = getattr(self._module, "APIConnectionError", None)
        status = getattr(exc, "status_code", None)
        if (conn_cls and isinstance(exc, conn_cls)) or not isinstance(status, int) or status < 400:
            status = 502
        message = getattr(exc, "message", None) or str(exc) or exc.__class__.__name__
        return UpstreamError(self.scrub(str(message))[:2000], status=status,
                             error_type=error_type_for(status), code=exc.__class__.__name__)

    async def complete(self, call, dep: Deployment, endpoint: str, body: dict) -> Reply:
        litellm = await self.module()
        kw = self._kwargs(dep, body, stream=False)
        try:
            if endpoint == EMBEDDINGS:
                resp = await litellm.aembedding(**kw)
            else:
                resp = await litellm.acompletion(**kw)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - litellm raises many types; all are mapped
            raise self._error_from(exc, dep) from None
        data = resp.model_dump(exclude_none=False)
        data.pop("_hidden_params", None)
        return Reply(200, _dumps(data).encode(), data)

    async def stream(self, call, dep: Deployment, endpoint: str, body: dict) -> UpstreamStream:
        litellm = await self.module()
        kw = self._kwargs(dep, body, stream=True)
        kw["stream"] = True
        kw["stream_options"] = {"include_usage": True}
        try:
            resp = await litellm.acompletion(**kw)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self._error_from(exc, dep) from None
        return _LiteLLMStream(resp, self, dep)


class _LiteLLMStream(UpstreamStream):
    def __init__(self, resp, backend: LiteLLMBackend, dep: Deployment):
        self._resp = resp
        self._backend = backend
        self._dep = dep

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._resp:
                yield b"data: " + chunk.model_dump_json(exclude_none=True).encode() + b"\n\n"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self._backend._error_from(exc, self._dep) from None
        yield b"data: [DONE]\n\n"

    async def close(self) -> None:
        closer = getattr(self._resp, "aclose", None)
        if closer is not None:
            try:
                await closer()
            except Exception:  # noqa: BLE001 - closing a broken stream may fail again
                pass
