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
    claude_code_import_interval = Float(
        0.0, min=0.0, config=True,
        help="Seconds between two imports of Claude Code's session logs into the store, run in a "
             "background thread so the dashboard shows live agent usage. 0 (default): off.")
    claude_code_paths = List(
        Unicode(), config=True,
        help="Claude config folders (holding projects/) or projects/ folders the scheduled import "
             "reads. Empty (default): where Claude Code writes, as `llmlab import claude-code` "
             "finds them (CLAUDE_CONFIG_DIR, $XDG_CONFIG_HOME/claude, ~/.claude).")

    background_priority = Bool(
        True, config=True,
        help="Run the server's bulk background work (journal flushes, scheduled Claude Code "
             "imports) at the lowest CPU priority, and DuckDB in the server on one thread, so "
             "that it does not slow proxied calls (measured: four times fewer slow calls during "
             "flushes). False: normal priority and DuckDB's default threads.")
    tune_gc = Bool(
        True, config=True,
        help="Once the server has started, freeze the objects it loaded out of the garbage "
             "collector's scans (gc.freeze) and raise the young-generation threshold to 10,000: "
             "about a fifth less CPU per proxied call under load and no 100 ms collection "
             "pauses. Process-wide; False keeps Python's defaults.")

    offline_mathjax = Bool(
        True, config=True,
        help="Make Voila (the dashboard) use the MathJax it bundles instead of loading it from a "
             "CDN, by setting the server's mathjax_url/mathjax_config to null unless "
             "ServerApp.tornado_settings sets them.")

    alert_webhooks = List(
        Unicode(), config=True,
        help="URLs that receive every budget alert as a JSON POST {\"text\": ..., \"alert\": "
             "{...}}: a Slack incoming webhook, a Telegram bot's sendMessage?chat_id=... URL, or "
             "any receiver. Empty (default): alerts go to the server log and the Jupyter event "
             "bus only.")
    alert_webhook_retries = Int(
        5, min=1, config=True,
        help="Attempts per webhook and alert (the first included) on connection errors, "
             "timeouts, 429 and 5xx, with exponential backoff and jitter; then one log line.")
    alert_webhook_backoff = Float(
        1.0, min=0.0, config=True,
        help="Seconds before the first retry of a webhook; each next wait doubles (with jitter). "
             "A 429's Retry-After wins.")
    alert_webhook_timeout = Float(
        10.0, min=0.1, config=True,
        help="Seconds one webhook attempt may take (connect, send, answer) before it counts as "
             "failed and is retried.")
    alert_message_model = Unicode(
        "", config=True,
        help="A model (as clients name it, e.g. 'gpt-4o-mini') that writes a witty one-liner for "
             "each alert's webhook message, called through this proxy. Empty (default): off; "
             "on any failure the plain text is sent.")
    metrics_max_label_values = Int(
        100, min=1, config=True,
        help="Distinct values the api/metrics labels model and project each keep; later new "
             "values are counted under 'other' (client-chosen names must not explode the "
             "number of series).")

    budget_thresholds = List(
        Float(), [0.8, 1.0], config=True,
        help="Fractions of a budget's limit at which an alert fires (once per budget and "
             "period), for budgets that set no thresholds of their own.")
    policy_reload_interval = Float(
        1.0, min=0.05, config=True,
        help="Seconds between two checks whether keys or budgets were changed by another "
             "process (the CLI, a notebook): such changes apply within about this delay. "
             "Changes made through the server's REST route apply at once.")
    reservation_max_tokens = Int(
        4096, min=1, config=True,
        help="Output tokens a call reserves against its budgets when the request sets no "
             "max_tokens/max_completion_tokens (the reservation is settled with the real cost "
             "when the call ends).")

    @default("config_file")
    def _default_config_file(self):
        return os.environ.get("LLMLAB_CONFIG", "")

    def _alert_dispatcher(self):
        from .proxy.alerts import AlertDispatcher, register_event_schema

        event_logger = getattr(self.serverapp, "event_logger", None)
        if event_logger is not None:
            register_event_schema(event_logger)
        writer = None
        if self.alert_message_model:
            from jupyter_server.utils import url_path_join

            from .proxy.alert_writer import proxy_message_writer

            writer = proxy_message_writer(
                chat_url=lambda: url_path_join(self.serverapp.connection_url,
                                               "llmlab/v1/chat/completions"),
                token=self.serverapp.identity_provider.token, model=self.alert_message_model)
        dispatcher = AlertDispatcher(
            webhooks=list(self.alert_webhooks), log=self.log, event_logger=event_logger,
            retries=self.alert_webhook_retries, backoff=self.alert_webhook_backoff,
            timeout=self.alert_webhook_timeout, message_writer=writer,
            message_timeout=min(self.alert_webhook_timeout, 10.0))
        io_loop = getattr(self.serverapp, "io_loop", None)
        if io_loop is not None:   # so a dispatch from a worker thread reaches the loop
            dispatcher.bind_loop(io_loop.asyncio_loop)
        return dispatcher

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
        service.alerts = self._alert_dispatcher()   # before any policy hook that dispatches
        if self.background_priority:   # before any background thread or DuckDB use
            from .proxy import background

            background.enable()
        flusher = BackgroundFlusher(store, interval=self.flush_interval, log=self.log)
        flusher.start()
        preload = self.preload_litellm if self.preload_litellm is not None else service.needs_litellm()
        if preload:
            service.litellm.preload()
        self.settings.update(llmlab_proxy=service, llmlab_flusher=flusher)
        self._add_metrics(service, flusher)
        self._add_policy(service)
        if self.offline_mathjax:
            self._use_bundled_mathjax()
        if self.claude_code_import_interval > 0:
            from .importers.scheduler import ClaudeCodeScheduler

            importer = ClaudeCodeScheduler(
                store, interval=self.claude_code_import_interval,
                paths=self.claude_code_paths or None, pricebook=pricer.book, log=self.log)
            importer.start()
            self.settings.update(llmlab_claude_code_import=importer)
        self.log.info("llmlab: proxy at %sllmlab/v1 (%d models configured%s); usage store %s",
                      self.serverapp.base_url, len(models.deployments),
                      f" from {self.config_file}" if self.config_file else "", store.db_path)

    def _use_bundled_mathjax(self) -> None:
        # Voila's page (and JupyterLab's page config) fall back to a CDN URL when the setting is
        # absent; None makes Voila use the MathJax it ships. An operator's own setting wins.
        web = self.serverapp.web_app.settings
        for name in ("mathjax_url", "mathjax_config"):
            if name not in self.serverapp.tornado_settings:
                web[name] = None

    def _add_policy(self, service) -> None:
        # Keys, budgets, rate limits, alerts: after service.alerts is set (it dispatches there).
        from .policy.hook import PolicyHook

        policy = PolicyHook(service, thresholds=self.budget_thresholds,
                            reload_interval=self.policy_reload_interval,
                            reservation_max_tokens=self.reservation_max_tokens, log=self.log)
        service.hooks.append(policy)
        self.settings.update(llmlab_policy=policy)

    async def _start_jupyter_server_extension(self, serverapp):
        # Every extension's routes are in by now: the proxy's hot ones go to the front.
        from .handlers.lean import route_fast_paths_first

        route_fast_paths_first(serverapp.web_app)
        # Load keys and budgets as soon as the loop runs (the first call would otherwise wait).
        policy = self.settings.get("llmlab_policy")
        if policy is not None:
            policy.start()
        if self.tune_gc:
            # Every extension is loaded by now; see proxy/heap.py for why and what it costs.
            from .proxy import heap

            heap.tune(self.log)

    def _add_metrics(self, service, flusher) -> None:
        from .proxy.metrics import ProxyMetrics, build_registry

        metrics = ProxyMetrics(max_label_values=self.metrics_max_label_values, service=service,
                               flusher=flusher, alerts=service.alerts)
        service.hooks.append(metrics)
        self.settings.update(llmlab_metrics=metrics, llmlab_metrics_registry=build_registry(metrics))

    def initialize_handlers(self):
        from .handlers import server_routes

        self.handlers.extend(server_routes(self.serverapp.web_app))

    async def stop_extension(self):
        import asyncio

        service = self.settings.get("llmlab_proxy")
        flusher = self.settings.get("llmlab_flusher")
        importer = self.settings.get("llmlab_claude_code_import")
        if importer is not None:
            await asyncio.get_running_loop().run_in_executor(None, importer.stop)
        policy = self.settings.get("llmlab_policy")
        if policy is not None:
            await policy.aclose()
        if service is not None:
            alerts = getattr(service, "alerts", None)
            if alerts is not None:
                await alerts.aclose()
            await service.aclose()
        if flusher is not None:
            await asyncio.get_running_loop().run_in_executor(None, flusher.stop)
        if self.background_priority:
            from .proxy import background

            background.disable()
