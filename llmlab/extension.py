"""The llmlab Jupyter server extension: an OpenAI-compatible proxy that records every call.

Enabled on install (``jupyter-config/jupyter_server_config.d/llmlab.json``). Every setting is a
trait of :class:`LLMLabApp` (``c.LLMLabApp.<name>`` in ``jupyter_server_config.py``, or
``--LLMLabApp.<name>=...`` on the command line); docs/operators/config.md lists them all.
"""

from __future__ import annotations

import os

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Dict, Enum, Float, Int, List, Unicode, default

from .errors import ConfigError
from .proxy.bodies import BODY_MODES


class LLMLabApp(ExtensionApp):
    name = "llmlab"
    description = "An OpenAI-compatible proxy that records the usage and cost of every LLM call."
    load_other_extensions = True

    home = Unicode(
        "", config=True,
        help="Folder of the usage store (usage.duckdb and journal/). Empty: $LLMLAB_HOME, else "
             "<jupyter data dir>/llmlab.")
    config_file = Unicode(
        config=True,
        help="A LiteLLM proxy config.yaml whose model_list (aliases, api_base, "
             "api_key: os.environ/NAME) routes the proxy's models. Defaults to $LLMLAB_CONFIG.")
    model_list = List(
        Dict(), config=True,
        help="Inline model list in LiteLLM's shape ([{model_name, litellm_params: {model, "
             "api_base, api_key}}]), added after config_file's.")
    offline_models = Bool(
        True, config=True,
        help="Serve the built-in offline models llmlab/offline and llmlab/offline-embedding, "
             "which answer without network or key.")
    store_bodies = Enum(
        list(BODY_MODES), "off", config=True,
        help="Store request and response bodies: 'off', 'on', or 'redacted' (structure kept, "
             "message contents replaced).")
    connect_timeout = Float(
        10.0, config=True,
        help="Seconds to wait for a connection to an upstream provider (then 504).")
    upstream_timeout = Float(
        600.0, config=True,
        help="Seconds to wait for an upstream's answer, and between two chunks of a stream "
             "(then 504). A deployment's litellm_params timeout/stream_timeout overrides it.")
    max_body_bytes = Int(
        32 << 20, config=True,
        help="Largest request body accepted, in bytes (larger: 413). ServerApp.max_body_size "
             "caps it too.")
    max_upstream_connections = Int(
        256, config=True,
        help="Connections kept open to upstream providers, over all of them.")
    journal_fsync_interval = Float(
        0.2, config=True,
        help="Seconds between group fsyncs of the journal. Records reach the OS before each "
             "response completes either way; this bounds what a power loss could take.")
    flush_interval = Float(
        5.0, config=True,
        help="Seconds between two flushes of the journal into usage.duckdb (each flush has a "
             "fixed cost, so shorter intervals cost CPU under load).")
    lock_timeout = Float(
        5.0, config=True,
        help="Seconds a flush waits for usage.duckdb when another process holds it; then the "
             "records stay in the journal and the next flush tries again.")
    default_project = Unicode(
        "", config=True,
        help="Project recorded for calls that name none (no X-LLMLab-Project header or "
             "metadata.project).")
    price_overrides = Dict(
        config=True,
        help="Per-model prices that win over LiteLLM's table, e.g. {'my-model': "
             "{'input_cost_per_token': 3e-6, 'output_cost_per_token': 1.2e-5}}.")
    preload_litellm = Bool(
        None, allow_none=True, config=True,
        help="Import litellm in a background thread at startup. None (default): only when the "
             "model list routes something through litellm.")

    @default("config_file")
    def _default_config_file(self):
        return os.environ.get("LLMLAB_CONFIG", "")

    def initialize_settings(self):
        from .errors import PricingError
        from .proxy import ModelList, ProxyService, Router, load_model_list
        from .proxy.flusher import BackgroundFlusher
        from .proxy.pricer import Pricer
        from .store import Store

        config_error = None
        try:
            models = load_model_list(self.config_file or None, self.model_list)
            pricer = Pricer(self.price_overrides)
        except (ConfigError, PricingError) as exc:
            # Keep the server (and JupyterLab) up; the proxy answers every call with this error.
            config_error = str(exc)
            models, pricer = ModelList(), Pricer()
            self.log.error("llmlab: the proxy refuses calls until its configuration is fixed: %s", exc)
        store = Store(self.home or None, lock_timeout=self.lock_timeout,
                      fsync_interval=self.journal_fsync_interval)
        service = ProxyService(
            router=Router(models, offline=self.offline_models and not config_error), store=store,
            pricer=pricer, config_error=config_error,
            body_mode=self.store_bodies, default_project=self.default_project or None,
            max_body_bytes=self.max_body_bytes, connect_timeout=self.connect_timeout,
            read_timeout=self.upstream_timeout, max_connections=self.max_upstream_connections,
            log=self.log)
        flusher = BackgroundFlusher(store, interval=self.flush_interval, log=self.log)
        flusher.start()
        preload = self.preload_litellm if self.preload_litellm is not None else service.needs_litellm()
        if preload:
            service.litellm.preload()
        self.settings.update(llmlab_proxy=service, llmlab_flusher=flusher)
        self.log.info("llmlab: proxy at %sllmlab/v1 (%d models configured%s); usage store %s",
                      self.serverapp.base_url, len(models.deployments),
                      f" from {self.config_file}" if self.config_file else "", store.db_path)

    def initialize_handlers(self):
        from .handlers import ROUTES

        self.handlers.extend(ROUTES)

    async def stop_extension(self):
        import asyncio

        service = self.settings.get("llmlab_proxy")
        flusher = self.settings.get("llmlab_flusher")
        if service is not None:
            await service.aclose()
        if flusher is not None:
            await asyncio.get_running_loop().run_in_executor(None, flusher.stop)
