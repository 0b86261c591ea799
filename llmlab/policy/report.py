"""The Python face of keys and budgets: ``lab.budgets()``, ``lab.alerts()``, ``lab.keys``.

Changes made here reach a running server within ``LLMLabApp.policy_reload_interval`` seconds
(registry.py's stamp file).
"""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd

from ..errors import QueryError
from ..store import Store
from . import registry
from .budgets import DEFAULT_THRESHOLDS, utc
from .spend import snapshot

BUDGET_COLUMNS = ["budget_id", "scope", "target", "period", "limit_usd", "hard", "thresholds",
                  "period_start", "period_end", "spent_usd", "remaining_usd", "used_pct",
                  "burn_rate_usd_per_hour", "projected_usd", "exhausts_at"]
ALERT_COLUMNS = ["alert_id", "budget_id", "scope", "target", "threshold", "spent_usd",
                 "limit_usd", "period_start", "period_end", "fired_at", "message"]
KEY_COLUMNS = ["key_id", "prefix", "name", "project", "client", "models", "rpm", "tpm",
               "expires_at", "created_at", "rotated_at", "revoked_at", "status"]


def _at(value) -> datetime:
    if value is None:
        return datetime.now(timezone.utc)
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise QueryError(f"at must be a datetime or an ISO string, not {value!r}") from None
    return utc(ts.to_pydatetime())


def budgets_frame(store: Store, at=None, thresholds=DEFAULT_THRESHOLDS) -> pd.DataFrame:
    """One row per budget with its spend in the period holding ``at`` (default now), counting
    calls still waiting in the journal, and the burn rate and projection at ``at``."""
    at = _at(at)
    budgets = registry.list_budgets(store)
    spent = snapshot(store, budgets, at=at, as_of=True).spent if budgets else {}
    rows = []
    for b in budgets:
        start, end = b.bounds(at)
        s = spent.get(b.budget_id, 0.0)
        elapsed_h = (at - start).total_seconds() / 3600.0
        total_h = (end - start).total_seconds() / 3600.0
        burn = s / elapsed_h if elapsed_h > 0 else float("nan")
        exhausts = pd.NaT
        if burn and burn == burn and s < b.limit_usd and b.limit_usd / burn < total_h:
            exhausts = pd.Timestamp(start) + pd.Timedelta(hours=b.limit_usd / burn)
        rows.append({
            "budget_id": b.budget_id, "scope": b.scope, "target": b.target,
            "period": b.period_name, "limit_usd": float(b.limit_usd), "hard": bool(b.hard),
            "thresholds": list(b.effective_thresholds(thresholds)),
            "period_start": pd.Timestamp(start), "period_end": pd.Timestamp(end),
            "spent_usd": float(s), "remaining_usd": float(b.limit_usd - s),
            "used_pct": float(s / b.limit_usd), "burn_rate_usd_per_hour": float(burn),
            "projected_usd": float(burn * total_h), "exhausts_at": exhausts,
        })
    df = pd.DataFrame(rows, columns=BUDGET_COLUMNS)
    for col in ("period_start", "period_end", "exhausts_at"):
        df[col] = pd.to_datetime(df[col], utc=True)
    return df


def alerts_frame(store: Store, since=None, budget_id: str | None = None) -> pd.DataFrame:
    """Fired alerts, newest first."""
    where, params = ["true"], []
    if since is not None:
        where.append("fired_at >= ?")
        params.append(_at(since))
    if budget_id is not None:
        where.append("budget_id = ?")
        params.append(budget_id)
    with store.read() as con:
        df = con.execute(f"SELECT {', '.join(ALERT_COLUMNS)} FROM budget_alerts "
                         f"WHERE {' AND '.join(where)} ORDER BY fired_at DESC, alert_id",
                         params).df()
    for col in ("period_start", "period_end", "fired_at"):
        df[col] = pd.to_datetime(df[col], utc=True)
    return df


class Keys:
    """``lab.keys``: create, list, revoke and rotate virtual keys (``sk-llmlab-...``)."""

    def __init__(self, store: Store):
        self.store = store

    def __repr__(self) -> str:
        return f"<llmlab keys of {self.store.db_path}>"

    def create(self, project: str, *, client: str | None = None, name: str | None = None,
               budget_usd: float | None = None, period="month", hard: bool = False,
               thresholds=None, rpm: int | None = None, tpm: int | None = None, models=None,
               expires=None) -> registry.CreatedKey:
        """A new key; ``.key`` is the secret, shown this once. ``budget_usd`` also sets a key
        budget for ``period`` (``hard=True`` refuses calls past it)."""
        if budget_usd is not None:   # validate before anything is written
            from .budgets import Budget

            Budget.make("project", project or "-", budget_usd, period, hard=hard, thresholds=thresholds)
        created = registry.create_key(self.store, project=project, client=client, name=name,
                                      models=models, rpm=rpm, tpm=tpm, expires=expires)
        if budget_usd is not None:
            registry.set_budget(self.store, "key", created.key_id, budget_usd, period, hard=hard,
                                thresholds=thresholds)
        return created

    def list(self, include_revoked: bool = True) -> pd.DataFrame:
        """Every key (never a secret or its hash) with its status."""
        now = datetime.now(timezone.utc)
        rows = [k.public(now) for k in registry.list_keys(self.store, include_revoked=include_revoked)]
        df = pd.DataFrame(rows, columns=KEY_COLUMNS)
        for col in ("expires_at", "created_at", "rotated_at", "revoked_at"):
            df[col] = pd.to_datetime(df[col], utc=True)
        return df

    def revoke(self, key_id: str):
        return registry.revoke_key(self.store, key_id)

    def rotate(self, key_id: str) -> registry.CreatedKey:
        """A new secret for ``key_id``; the old one stops working."""
        return registry.rotate_key(self.store, key_id)
