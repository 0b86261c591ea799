"""PolicyHook: virtual keys, budgets, rate limits and alerts on the proxy's hook seam.

    key auth        handlers ask :meth:`PolicyHook.authenticate` for ``Bearer sk-llmlab-...``
    before_forward  the key's project/client win over headers; model allow-list; rate limits;
                    reserve the estimated cost on every matching budget (hard ones may refuse: 429)
    after_record    settle the real cost, count tokens, fire each threshold once per period

The request path never touches DuckDB: keys and budgets live in memory, loaded on an executor at
start and reloaded when ``policy.stamp`` moves (another process changed them) or at once after a
REST change. Spend is rebuilt from the store and the journal (spend.py) for budgets that are new
to this process, so a restart forgets nothing. docs/developers/budgets.md has the reasoning.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import datetime, timezone
from typing import Any

from ..errors import ConfigError, ProxyError
from ..proxy.usage import Tokens
from . import registry
from .budgets import DEFAULT_THRESHOLDS, parse_thresholds, utc
from .keys import VirtualKey, parse_key
from .ledger import Entry, Ledger, Settled
from .ratelimit import RateLimiter
from .spend import SpendSnapshot, snapshot

READY_TIMEOUT_S = 30.0
# How long a call without a virtual key waits for the first load before it goes ahead unheld.
UNKEYED_WAIT_S = 2.0
_RESERVATION = "llmlab_reservation"


def _unauthorized(message: str) -> ProxyError:
    return ProxyError(message, status=401, error_type="invalid_request_error", code="invalid_api_key")


class PolicyHook:
    def __init__(self, service, *, thresholds=DEFAULT_THRESHOLDS, reload_interval: float = 1.0,
                 reservation_max_tokens: int = 4096, log: logging.Logger | None = None):
        self.service = service
        self.store = service.store
        self.log = log or logging.getLogger("llmlab.policy")
        try:
            parsed = parse_thresholds(list(thresholds))
            self.thresholds = DEFAULT_THRESHOLDS if parsed is None else parsed   # (): no alerts
        except ConfigError as exc:
            self.log.error("llmlab: LLMLabApp.budget_thresholds ignored (%s); using %s", exc,
                           list(DEFAULT_THRESHOLDS))
            self.thresholds = DEFAULT_THRESHOLDS
        self.reload_interval = reload_interval
        self.reservation_max_tokens = reservation_max_tokens
        self.keys: dict[str, VirtualKey] = {}
        self.ledger = Ledger()
        self.limiter = RateLimiter()
        self.fired: set[str] = set()
        self.loaded_at: datetime | None = None
        self.load_error: str | None = None
        self._stamp: Any = None
        self._ready: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._reload_lock: asyncio.Lock | None = None
        self._unsaved_alerts: list[dict] = []
        self._saving = False
        self._warned_at = -1e9

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start loading and the reload loop (idempotent; needs the running event loop)."""
        if self._task is None:
            self._ready = asyncio.Event()
            self._reload_lock = asyncio.Lock()
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _ready_within(self, seconds: float) -> bool:
        self.start()
        try:
            await asyncio.wait_for(asyncio.shield(self._ready.wait()), seconds)
        except asyncio.TimeoutError:
            return False
        return True

    async def ready(self) -> None:
        self.start()
        if not self._ready.is_set():
            try:
                await asyncio.wait_for(self._ready.wait(), READY_TIMEOUT_S)
            except asyncio.TimeoutError:
                raise ProxyError("llmlab could not load its keys and budgets yet "
                                 f"({self.load_error or 'still loading'}); try again shortly",
                                 status=503, error_type="api_error", code="policy_unavailable") from None

    async def _run(self) -> None:
        while True:
            try:
                stamp = registry.stamp_of(self.store)   # one stat(): cheap enough for the loop
                if stamp != self._stamp or not self._ready.is_set():
                    await self.reload(stamp)
                if self._unsaved_alerts and not self._saving:
                    await self._save_alerts()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep the last good state and retry
                if str(exc) != self.load_error or time.monotonic() - self._warned_at > 60:
                    self._warned_at = time.monotonic()   # one line a minute while it lasts
                    self.log.warning("llmlab: could not load keys and budgets (retrying every "
                                     "%.1f s): %s", self.reload_interval, exc)
                self.load_error = str(exc)
            await asyncio.sleep(self.reload_interval)

    async def reload(self, stamp: Any = None) -> None:
        """Load keys, budgets and fired alerts; sum the spend of budgets new to this process."""
        if self._reload_lock is None:
            self.start()
        async with self._reload_lock:
            if stamp is None:
                stamp = registry.stamp_of(self.store)
            loop = asyncio.get_running_loop()
            started = datetime.now(timezone.utc)
            self.ledger.begin_capture()
            state = await loop.run_in_executor(None, registry.load_state, self.store, started)
            new = [b for bid, b in state.budgets.items()
                   if bid not in self.ledger.entries
                   or self.ledger.entries[bid].budget.definition() != b.definition()]
            # Budgets this process already holds keep their live spend: with none new (a key
            # change, a limit change) there is nothing to sum, so no journal or table scan.
            snap = SpendSnapshot(started, {}) if not new else await loop.run_in_executor(
                None, lambda: snapshot(self.store, new, at=started, recent_since=started))
            now = datetime.now(timezone.utc)
            # The snapshot's periods; an entry whose period ended meanwhile rolls on next use.
            self.ledger.install(state.budgets, snap.spent, snap.counted_ids, snap.at)
            self.keys = state.keys
            self.fired |= state.fired
            self.limiter.forget(set(self.keys))
            self._stamp = stamp
            self.loaded_at = now
            self.load_error = None
            self._ready.set()
            # A budget lowered below its spend, or spend that arrived while no server ran.
            for e in self.ledger.entries.values():
                e.roll(now)
                self._check_thresholds(e, now)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
            self._task = None
        if self._unsaved_alerts:
            try:
                await self._save_alerts()
            except Exception:  # noqa: BLE001
                self.log.exception("llmlab: could not save %d fired alerts", len(self._unsaved_alerts))

    # -- keys -------------------------------------------------------------------------------
    async def authenticate(self, token: str) -> VirtualKey:
        """The active key for ``token``, or a 401 ProxyError (never naming the secret)."""
        await self.ready()
        parsed = parse_key(token)
        key = self.keys.get(parsed[0]) if parsed else None
        if key is None or not key.matches(token):
            raise _unauthorized("Incorrect API key provided: not a valid llmlab key.")
        if key.revoked_at is not None:
            raise _unauthorized(f"The llmlab key {key.key_id} has been revoked.")
        if key.expired():
            raise _unauthorized(f"The llmlab key {key.key_id} expired on "
                                f"{key.expires_at:%Y-%m-%d %H:%M} UTC.")
        return key

    # -- the hook -----------------------------------------------------------------------------
    async def before_forward(self, call) -> None:
        if self._ready is None or not self._ready.is_set():
            if call.key_id is not None:
                await self.ready()
            elif not await self._ready_within(UNKEYED_WAIT_S):
                # The store is locked at startup: calls authenticated by Jupyter's token keep
                # working (as the proxy does without budgets); their spend is counted once the
                # budgets load (spend.py reads the journal), and enforced from then on.
                if time.monotonic() - self._warned_at > 60:
                    self._warned_at = time.monotonic()
                    self.log.warning("llmlab: budgets are not loaded yet (%s); calls are not "
                                     "held to them until they are", self.load_error or "loading")
                return
        key = None
        if call.key_id is not None:
            key = self.keys.get(call.key_id)
            if key is None or key.revoked_at is not None or key.expired():
                raise _unauthorized(f"The llmlab key {call.key_id} is no longer valid.")
            # The key decides whom the call is billed to: a key must not bill another client.
            call.attribution.project = key.project
            call.attribution.client = key.client
            if key.models and call.model_requested not in key.models:
                raise ProxyError(f"The llmlab key {key.key_id} may not use the model "
                                 f"`{call.model_requested}` (allowed: {', '.join(key.models)}).",
                                 status=403, error_type="permission_error", param="model",
                                 code="model_not_allowed")
            self.limiter.admit(key.key_id, key.rpm, key.tpm, time.monotonic())   # may refuse: 429
        attr = call.attribution
        entries = self.ledger.matching(call.key_id, attr.project, attr.client)
        if not entries:
            return
        now = datetime.now(timezone.utc)
        res = self.ledger.reserve(entries, self.estimate(call), now)   # may refuse: 429
        extra = call.extra if call.extra is not None else {}
        extra[_RESERVATION] = res
        call.extra = extra

    def estimate(self, call) -> float:
        """An upper-bound guess of the call's cost: prompt size and max_tokens (or the default
        cap), priced like the real call. 0 when the model has no price."""
        route = call.route
        if route is None:
            return 0.0
        body = (call.extra or {}).get("body") or {}
        prompt = body.get("messages") if "messages" in body else body.get("input")
        # ~4 characters per token in practice; 3 keeps the guess on the high side.
        input_tokens = len(json.dumps(prompt, default=str)) // 3 + 16 if prompt else 16
        output_tokens = 0
        if call.endpoint.endswith("chat/completions"):
            cap = body.get("max_completion_tokens") or body.get("max_tokens")
            cap = cap if isinstance(cap, int) and cap > 0 else self.reservation_max_tokens
            n = body.get("n") if isinstance(body.get("n"), int) and body.get("n") > 0 else 1
            output_tokens = cap * n
        tokens = Tokens(input_tokens, output_tokens, 0, 0, None, None, None)
        try:
            cost, _ = self.service.pricer.cost_of(route.deployment, None, tokens)
        except Exception:  # noqa: BLE001 - a price glitch must not refuse the call
            return 0.0
        return float(cost) if cost is not None else 0.0

    def after_record(self, call, rec) -> None:
        res = (call.extra or {}).get(_RESERVATION)
        now = datetime.now(timezone.utc)
        if call.key_id is not None and rec is not None and rec.total_tokens:
            self.limiter.used(call.key_id, int(rec.total_tokens), time.monotonic())
        if rec is None:
            return self.ledger.release(res)
        cost = float(rec.cost_usd) if rec.cost_usd is not None else 0.0
        settled = Settled(rec.request_id, utc(rec.started_at), cost, rec.key_id, rec.project,
                          rec.client)
        for e in self.ledger.settle(res, settled, now):
            self._check_thresholds(e, now)

    # -- alerts -------------------------------------------------------------------------------
    def _check_thresholds(self, e: Entry, now: datetime) -> None:
        b = e.budget
        for t in b.effective_thresholds(self.thresholds):
            if e.spent + 1e-12 < t * b.limit_usd:
                break
            alert = self._alert(e, t, now)
            if alert.alert_id in self.fired:
                continue
            self.fired.add(alert.alert_id)   # before dispatching: once, whatever happens next
            self._fire(alert)

    def _alert(self, e: Entry, threshold: float, now: datetime):
        from ..proxy.alerts import Alert

        b = e.budget
        return Alert(budget_id=b.budget_id, scope=b.scope, target=b.target, threshold=threshold,
                     spent_usd=round(e.spent, 6), limit_usd=b.limit_usd, period=b.period,
                     period_start=e.period_start, period_end=e.period_end, hard=b.hard,
                     fired_at=now)

    def _fire(self, alert) -> None:
        dispatcher = getattr(self.service, "alerts", None)
        if dispatcher is not None:
            dispatcher.dispatch(alert)
        else:
            self.log.warning("%s", alert.text())
        self._unsaved_alerts.append({**alert.as_dict(), "message": alert.text()})
        if not self._saving:
            asyncio.get_running_loop().create_task(self._save_alerts())

    async def _save_alerts(self) -> None:
        """Persist fired alerts (executor, write lease); on failure they wait for the next tick."""
        if self._saving or not self._unsaved_alerts:
            return
        self._saving = True
        batch, self._unsaved_alerts = self._unsaved_alerts, []
        try:
            await asyncio.get_running_loop().run_in_executor(
                None, registry.record_alerts, self.store, batch)
        except Exception as exc:  # noqa: BLE001 - retried by the reload loop
            self._unsaved_alerts = batch + self._unsaved_alerts
            self.log.warning("llmlab: could not save %d fired alerts yet: %s", len(batch), exc)
        finally:
            self._saving = False

    # -- views --------------------------------------------------------------------------------
    def budgets_view(self) -> list[dict]:
        now = datetime.now(timezone.utc)
        out = []
        for e in sorted(self.ledger.entries.values(), key=lambda e: e.budget.budget_id):
            e.roll(now)
            d = e.public()
            d["thresholds"] = list(e.budget.effective_thresholds(self.thresholds))
            out.append(d)
        return out
