"""``api/health``: is the proxy able to record? Store status, journal backlog, upstreams.

The store's status comes from the flusher thread's last attempt: this handler never opens
usage.duckdb (DuckDB never runs on the event loop); the journal is listed in a worker thread.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict

import tornado.web

from .. import __version__
from ..proxy import heap
from .base import LLMLabHandler


class HealthHandler(LLMLabHandler):
    @tornado.web.authenticated
    async def get(self):
        svc = self.service
        flusher = self.settings.get("llmlab_flusher")
        importer = self.settings.get("llmlab_claude_code_import")
        backlog = await asyncio.get_running_loop().run_in_executor(None, svc.store.backlog)
        store_state = dict(flusher.state) if flusher is not None else {"status": "not running"}
        status = "ok" if store_state.get("status") in ("ok", "starting") else "degraded"
        if svc.config_error:
            status = "error"
        self.finish({
            "status": status,
            "version": __version__,
            "config_error": svc.config_error,
            "store": {"path": str(svc.store.db_path), **store_state},
            "journal": {"path": str(svc.store.journal_dir), **asdict(backlog),
                        "write_errors": svc.journal_errors},
            "upstreams": svc.upstreams(),
            "litellm": {"loaded": svc.litellm.loaded},
            "body_storage": svc.body_mode,
            "default_project": svc.default_project,
            "claude_code_import": dict(importer.state) if importer else {"status": "off"},
            "gc": heap.state(),
        })
