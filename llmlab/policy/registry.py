"""Keys, budgets and fired alerts in usage.duckdb: every change under one short write lease.

Used by the CLI, ``lab.keys`` / ``lab.budgets`` and the server's REST route (always on an
executor there). After each change the writer touches ``policy.stamp`` beside usage.duckdb; a
running server checks that file's mtime every ``LLMLabApp.policy_reload_interval`` seconds and
reloads keys and budgets when it moved (so a change from another process applies within about
that interval).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..errors import ConfigError
from ..store import Store
from .budgets import Budget, parse_thresholds, utc
from .keys import VirtualKey, display_prefix, format_key, hash_key, new_key_id, new_secret, valid_key_id

STAMP_FILENAME = "policy.stamp"
_KEY_COLUMNS = ("key_id, prefix, secret_hash, project, client, name, models, rpm, tpm, "
                "expires_at, created_at, rotated_at, revoked_at")
_BUDGET_COLUMNS = "budget_id, scope, target, period, period_seconds, limit_usd, hard, thresholds"


def stamp_path(store: Store) -> Path:
    return store.home / STAMP_FILENAME


def touch_stamp(store: Store) -> None:
    p = stamp_path(store)
    p.parent.mkdir(parents=True, exist_ok=True)
    # Write a new value, not only the mtime: two changes within one mtime tick still differ.
    tmp = p.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(f"{datetime.now(timezone.utc).isoformat()} {os.getpid()}\n")
    os.replace(tmp, p)


def stamp_of(store: Store) -> tuple[int, int] | None:
    try:
        st = os.stat(stamp_path(store))
    except OSError:
        return None
    return st.st_mtime_ns, st.st_ino


@dataclass(frozen=True)
class CreatedKey:
    """A new (or rotated) key. ``key`` is the secret: shown once, never stored."""

    key: str
    info: VirtualKey

    @property
    def key_id(self) -> str:
        return self.info.key_id

    def __repr__(self) -> str:   # keep the secret out of logs and tracebacks
        return f"CreatedKey(key_id={self.key_id!r}, prefix={self.info.prefix!r})"


def _clean(v) -> str | None:
    if v is None:
        return None
    s = str(v).strip()
    return s or None


def _positive(name: str, v) -> int | None:
    if v is None or v == "":
        return None
    try:
        n = int(v)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a whole number, not {v!r}") from None
    if n <= 0:
        raise ConfigError(f"{name} must be more than 0")
    return n


def parse_expiry(value) -> datetime | None:
    """``None``, a datetime, or ``YYYY-MM-DD`` (end of that day, UTC) / an ISO datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return utc(value)
    s = str(value).strip()
    try:
        if len(s) == 10:
            d = datetime.fromisoformat(s)
            return d.replace(hour=23, minute=59, second=59, tzinfo=timezone.utc)
        return utc(datetime.fromisoformat(s.replace("Z", "+00:00")))
    except ValueError:
        raise ConfigError(f"--expires takes YYYY-MM-DD or an ISO datetime, not {value!r}") from None


def _models(value) -> tuple[str, ...]:
    if not value:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(m.strip() for m in items if m and m.strip())


def _key_from_row(r) -> VirtualKey:
    return VirtualKey(key_id=r[0], prefix=r[1], secret_hash=r[2], project=r[3], client=r[4],
                      name=r[5], models=tuple(r[6] or ()), rpm=r[7], tpm=r[8],
                      expires_at=_tz(r[9]), created_at=_tz(r[10]), rotated_at=_tz(r[11]),
                      revoked_at=_tz(r[12]))


def _tz(t):
    return None if t is None else utc(t)


def _budget_from_row(r) -> Budget:
    return Budget(budget_id=r[0], scope=r[1], target=r[2], period=r[3], period_seconds=r[4],
                  limit_usd=float(r[5]), hard=bool(r[6]),
                  thresholds=None if r[7] is None else tuple(float(x) for x in r[7]))


# -- keys -------------------------------------------------------------------------------------
def create_key(store: Store, *, project: str, client: str | None = None, name: str | None = None,
               models=None, rpm=None, tpm=None, expires=None) -> CreatedKey:
    project = _clean(project)
    if not project:
        raise ConfigError("a key needs a project (--project): its calls are billed to it")
    key_id, secret = new_key_id(), new_secret()
    key = format_key(key_id, secret)
    info = VirtualKey(key_id=key_id, prefix=display_prefix(key_id, secret),
                      secret_hash=hash_key(key), project=project, client=_clean(client),
                      name=_clean(name), models=_models(models), rpm=_positive("rpm", rpm),
                      tpm=_positive("tpm", tpm), expires_at=parse_expiry(expires),
                      created_at=datetime.now(timezone.utc))
    with store.write() as con:
        con.execute(f"INSERT INTO api_keys ({_KEY_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    [info.key_id, info.prefix, info.secret_hash, info.project, info.client,
                     info.name, list(info.models), info.rpm, info.tpm, info.expires_at,
                     info.created_at, None, None])
    touch_stamp(store)
    return CreatedKey(key, info)


def list_keys(store: Store, *, include_revoked: bool = True) -> list[VirtualKey]:
    with store.read() as con:
        rows = con.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created_at, key_id").fetchall()
    keys = [_key_from_row(r) for r in rows]
    return keys if include_revoked else [k for k in keys if k.revoked_at is None]


def _check_key_id(key_id: str) -> None:
    if not valid_key_id(key_id):
        raise ConfigError(f"{key_id!r} is not a key id (12 hex digits, as `llmlab keys list` shows)")


def _no_key(store: Store, key_id: str) -> ConfigError:
    return ConfigError(f"no key {key_id!r} in {store.db_path}")


def get_key(store: Store, key_id: str) -> VirtualKey:
    _check_key_id(key_id)
    with store.read() as con:
        row = con.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_id = ?", [key_id]).fetchone()
    if row is None:
        raise _no_key(store, key_id)
    return _key_from_row(row)


# The changes below are one UPDATE ... RETURNING under one write lease, and raise only after the
# lease (an exception inside a write block leaves the rollup marked dirty: store/rollup.py).
def revoke_key(store: Store, key_id: str) -> VirtualKey:
    _check_key_id(key_id)
    with store.write() as con:
        row = con.execute("UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE key_id = ? "
                          f"RETURNING {_KEY_COLUMNS}", [datetime.now(timezone.utc), key_id]).fetchone()
    if row is None:
        raise _no_key(store, key_id)
    touch_stamp(store)
    return _key_from_row(row)


def rotate_key(store: Store, key_id: str) -> CreatedKey:
    """A new secret for the same key id (its budgets, limits and history stay); the old secret
    stops working as soon as the server reloads."""
    _check_key_id(key_id)
    secret = new_secret()
    key = format_key(key_id, secret)
    now = datetime.now(timezone.utc)
    with store.write() as con:
        row = con.execute("UPDATE api_keys SET secret_hash = ?, prefix = ?, rotated_at = ? "
                          f"WHERE key_id = ? AND revoked_at IS NULL RETURNING {_KEY_COLUMNS}",
                          [hash_key(key), display_prefix(key_id, secret), now, key_id]).fetchone()
    if row is None:
        get_key(store, key_id)   # raises when there is no such key; else it is revoked
        raise ConfigError(f"key {key_id} is revoked; create a new one instead")
    touch_stamp(store)
    return CreatedKey(key, _key_from_row(row))


# -- budgets ----------------------------------------------------------------------------------
def set_budget(store: Store, scope: str, target: str, limit_usd, period="month", *,
               hard: bool = False, thresholds=None) -> Budget:
    b = Budget.make(scope, target, limit_usd, period, hard=hard, thresholds=thresholds)
    if scope == "key":
        get_key(store, b.target)
    now = datetime.now(timezone.utc)
    with store.write() as con:
        con.execute("BEGIN TRANSACTION")
        con.execute("DELETE FROM budgets WHERE budget_id = ?", [b.budget_id])   # keeps created_at simple
        con.execute(f"INSERT INTO budgets ({_BUDGET_COLUMNS}, created_at, updated_at) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?)",
                    [b.budget_id, b.scope, b.target, b.period, b.period_seconds, b.limit_usd,
                     b.hard, None if b.thresholds is None else list(b.thresholds), now, now])
        con.execute("COMMIT")
    touch_stamp(store)
    return b


def list_budgets(store: Store) -> list[Budget]:
    with store.read() as con:
        rows = con.execute(f"SELECT {_BUDGET_COLUMNS} FROM budgets ORDER BY budget_id").fetchall()
    return [_budget_from_row(r) for r in rows]


def delete_budget(store: Store, budget_id: str) -> None:
    with store.write() as con:
        found = con.execute("DELETE FROM budgets WHERE budget_id = ? RETURNING budget_id",
                            [budget_id]).fetchall()
    if not found:
        raise ConfigError(f"no budget {budget_id!r} (see `llmlab budgets list`)")
    touch_stamp(store)


# -- everything the server holds in memory ------------------------------------------------------
@dataclass
class PolicyState:
    keys: dict[str, VirtualKey]
    budgets: dict[str, Budget]
    fired: set[str]        # alert ids of current and later periods


def load_state(store: Store, at: datetime | None = None) -> PolicyState:
    at = utc(at)
    with store.read() as con:
        keys = [_key_from_row(r) for r in con.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys").fetchall()]
        budgets = [_budget_from_row(r) for r in
                   con.execute(f"SELECT {_BUDGET_COLUMNS} FROM budgets").fetchall()]
        fired = {r[0] for r in con.execute(
            "SELECT alert_id FROM budget_alerts WHERE period_end > ?", [at]).fetchall()}
    return PolicyState({k.key_id: k for k in keys}, {b.budget_id: b for b in budgets}, fired)


def record_alerts(store: Store, alerts: list[dict]) -> None:
    """Remember fired alerts (``Alert.as_dict()`` plus ``message``), idempotent on alert_id."""
    if not alerts:
        return
    rows = [[a["alert_id"], a["budget_id"], a["scope"], a["target"], a["threshold"],
             a["spent_usd"], a["limit_usd"], a["period"], a["period_start"], a["period_end"],
             a["hard"], a["fired_at"], a.get("message")] for a in alerts]
    values = ",".join(["(?,?,?,?,?,?,?,?,?,?,?,?,?)"] * len(rows))
    with store.write() as con:   # one statement for the batch
        con.execute(f"INSERT OR IGNORE INTO budget_alerts VALUES {values}",
                    [v for row in rows for v in row])


__all__ = ["CreatedKey", "PolicyState", "create_key", "list_keys", "get_key", "revoke_key",
           "rotate_key", "set_budget", "list_budgets", "delete_budget", "load_state",
           "record_alerts", "touch_stamp", "stamp_of", "parse_thresholds"]
