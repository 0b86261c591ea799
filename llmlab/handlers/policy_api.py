"""``llmlab/api/keys``, ``llmlab/api/budgets``, ``llmlab/api/alerts``: keys and budgets for the
dashboard. Jupyter's own authentication only: a virtual key is refused here like on every other
non-proxy route. Changes go to the store on an executor and apply to the proxy at once.

    GET    api/keys                      every key (no secrets)
    POST   api/keys                      {"project", "client", "name", "budget_usd", "period",
                                          "hard", "thresholds", "rpm", "tpm", "models",
                                          "expires"} -> 201 {"key": "sk-llmlab-...", ...} (once)
    DELETE api/keys/<key_id>             revoke
    POST   api/keys/<key_id>/rotate      -> {"key": ...} (once)
    GET    api/budgets                   live state: spent, reserved, in flight, period
    PUT    api/budgets                   {"scope", "target", "limit_usd", "period", "hard",
                                          "thresholds"} (create or update)
    DELETE api/budgets/<budget_id>
    GET    api/alerts?since=&budget_id=  fired alerts, newest first
"""

from __future__ import annotations

import asyncio
import json
from functools import partial

import tornado.web

from ..errors import BadRequestError, ConfigError, QueryError
from ..policy import registry
from .base import LLMLabHandler


class PolicyAPIHandler(LLMLabHandler):
    @property
    def policy(self):
        return self.settings["llmlab_policy"]

    async def run(self, fn, *args, **kwargs):
        try:
            return await asyncio.get_running_loop().run_in_executor(None, partial(fn, *args, **kwargs))
        except (ConfigError, QueryError) as exc:
            raise BadRequestError(str(exc), code="invalid_value") from None

    def body(self) -> dict:
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError:
            raise BadRequestError("the body is not JSON", code="invalid_json") from None
        if not isinstance(data, dict):
            raise BadRequestError("the body must be a JSON object", code="invalid_json")
        return data

    async def changed(self) -> None:
        try:
            await self.policy.reload()
        except Exception as exc:  # noqa: BLE001 - saved already; the reload loop retries
            self.log.warning("llmlab: change saved, but reloading keys and budgets failed "
                             "(retried within policy_reload_interval): %s", exc)

class KeysHandler(PolicyAPIHandler):
    @tornado.web.authenticated
    async def get(self):
        keys = await self.run(registry.list_keys, self.service.store)
        self.finish({"keys": [k.public() for k in keys]})

    @tornado.web.authenticated
    async def post(self):
        from ..policy.report import Keys

        b = self.body()
        allowed = {"project", "client", "name", "budget_usd", "period", "hard", "thresholds",
                   "rpm", "tpm", "models", "expires"}
        unknown = set(b) - allowed
        if unknown:
            raise BadRequestError(f"unknown fields: {', '.join(sorted(unknown))}", code="invalid_value")
        project = b.pop("project", None)
        if not isinstance(project, str):
            raise BadRequestError("'project' (a string) is required", param="project",
                                  code="invalid_value")
        created = await self.run(Keys(self.service.store).create, project, **b)
        await self.changed()
        self.set_status(201)
        self.finish({"key": created.key, **created.info.public()})


class KeyHandler(PolicyAPIHandler):
    @tornado.web.authenticated
    async def delete(self, key_id: str):
        key = await self.run(registry.revoke_key, self.service.store, key_id)
        await self.changed()
        self.finish(key.public())


class KeyRotateHandler(PolicyAPIHandler):
    @tornado.web.authenticated
    async def post(self, key_id: str):
        created = await self.run(registry.rotate_key, self.service.store, key_id)
        await self.changed()
        self.finish({"key": created.key, **created.info.public()})


class BudgetsHandler(PolicyAPIHandler):
    @tornado.web.authenticated
    async def get(self):
        await self.policy.ready()
        self.finish({"budgets": self.policy.budgets_view()})

    @tornado.web.authenticated
    async def put(self):
        b = self.body()
        for name in ("scope", "target", "limit_usd"):
            if name not in b:
                raise BadRequestError(f"'{name}' is required", param=name, code="invalid_value")
        budget = await self.run(registry.set_budget, self.service.store, b["scope"], b["target"],
                                b["limit_usd"], b.get("period", "month"),
                                hard=bool(b.get("hard", False)), thresholds=b.get("thresholds"))
        await self.changed()
        self.finish(budget.public())

    post = put


class BudgetHandler(PolicyAPIHandler):
    @tornado.web.authenticated
    async def delete(self, budget_id: str):
        await self.run(registry.delete_budget, self.service.store, budget_id)
        await self.changed()
        self.set_status(204)
        self.finish()


class AlertsHandler(PolicyAPIHandler):
    @tornado.web.authenticated
    async def get(self):
        from ..policy.report import alerts_frame

        df = await self.run(alerts_frame, self.service.store, self.get_argument("since", None),
                            self.get_argument("budget_id", None))
        rows = json.loads(df.to_json(orient="records", date_format="iso"))
        self.finish({"alerts": rows})


ROUTES = [
    (r"llmlab/api/keys", KeysHandler),
    (r"llmlab/api/keys/([0-9a-f]{12})", KeyHandler),
    (r"llmlab/api/keys/([0-9a-f]{12})/rotate", KeyRotateHandler),
    (r"llmlab/api/budgets", BudgetsHandler),
    (r"llmlab/api/budgets/(.+)", BudgetHandler),
    (r"llmlab/api/alerts", AlertsHandler),
]
