"""``api/metrics``: the proxy's metrics in Prometheus' text format, for a scraper with the token.

The journal's backlog is read in a worker thread (it lists and reads journal files); the rest
comes from counters in memory. usage.duckdb is never opened here.
"""

from __future__ import annotations

import asyncio

import tornado.web
from prometheus_client import exposition, generate_latest

from .base import LLMLabHandler

# generate_latest() writes names in the legacy charset (underscores), i.e. the 0.0.4 text format
# that every Prometheus version and most scrapers read; prometheus_client >= 0.22 labels its
# output 1.0.0 by default, which older scrapers do not know.
CONTENT_TYPE = getattr(exposition, "CONTENT_TYPE_PLAIN_0_0_4",
                       "text/plain; version=0.0.4; charset=utf-8")


class MetricsHandler(LLMLabHandler):
    @tornado.web.authenticated
    async def get(self):
        metrics = self.settings["llmlab_metrics"]
        await asyncio.get_running_loop().run_in_executor(None, metrics.read_store)
        self.set_header("Cache-Control", "no-store")
        # APIHandler.finish would otherwise label the body application/json.
        self.finish(generate_latest(self.settings["llmlab_metrics_registry"]),
                    set_content_type=CONTENT_TYPE)
