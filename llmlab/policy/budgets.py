"""Budgets: a USD limit on a key, a project or a client, per period, in UTC.

Periods: ``day`` (from 00:00 UTC), ``week`` (from Monday 00:00 UTC), ``month`` (calendar month
from the 1st, 00:00 UTC), or a custom length in seconds, counted from the Unix epoch (so an
``3600`` budget resets on every full UTC hour, whenever it was created).

A budget's id is ``<scope>:<target>:<period>`` (``project:atlas:month``, ``key:3fa9c0d2e4b1:day``,
``client:acme:3600s``): one budget per target and period, so ``budgets set`` twice updates it.
What counts: ``cost_usd`` of the proxy's calls (``source = 'proxy'``) that started inside the
period and carry the target in ``key_id``, ``project`` or ``client``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ..errors import ConfigError

SCOPES = ("key", "project", "client")
NAMED_PERIODS = ("day", "week", "month")
DEFAULT_THRESHOLDS = (0.8, 1.0)
SCOPE_COLUMNS = {"key": "key_id", "project": "project", "client": "client"}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MIN_CUSTOM_SECONDS = 60


def parse_period(value: Any) -> tuple[str, int | None]:
    """``'day'|'week'|'month'`` or a number of seconds (``3600``, ``'3600s'``, ``'12h'``,
    ``'7d'``) -> ``(period, period_seconds)``; custom lengths are ``('custom', seconds)``."""
    if isinstance(value, str):
        v = value.strip().lower()
        if v in NAMED_PERIODS:
            return v, None
        units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
        mult = units.get(v[-1:], None)
        digits = v[:-1] if mult else v
        try:
            seconds = int(float(digits) * (mult or 1))
        except ValueError:
            raise ConfigError(f"unknown budget period {value!r}: use day, week, month or a length "
                              "such as 3600, 12h, 7d") from None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = int(value)
    else:
        raise ConfigError(f"unknown budget period {value!r}")
    if seconds < MIN_CUSTOM_SECONDS:
        raise ConfigError(f"a custom budget period must be at least {MIN_CUSTOM_SECONDS} seconds")
    return "custom", seconds


def period_label(period: str, seconds: int | None) -> str:
    return f"{seconds}s" if period == "custom" else period


def budget_id_for(scope: str, target: str, period: str, seconds: int | None) -> str:
    return f"{scope}:{target}:{period_label(period, seconds)}"


def utc(t: datetime | None = None) -> datetime:
    if t is None:
        return datetime.now(timezone.utc)
    if t.tzinfo is None:
        return t.replace(tzinfo=timezone.utc)
    return t.astimezone(timezone.utc)


def period_bounds(period: str, seconds: int | None, at: datetime) -> tuple[datetime, datetime]:
    """``[start, end)`` of the period holding ``at`` (UTC)."""
    at = utc(at)
    if period == "day":
        start = at.replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + timedelta(days=1)
    if period == "week":
        day = at.replace(hour=0, minute=0, second=0, microsecond=0)
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    if period == "month":
        start = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = (start.replace(year=start.year + 1, month=1) if start.month == 12
               else start.replace(month=start.month + 1))
        return start, end
    if period == "custom" and seconds:
        n = int((at - _EPOCH).total_seconds() // seconds)
        start = _EPOCH + timedelta(seconds=n * seconds)
        return start, start + timedelta(seconds=seconds)
    raise ConfigError(f"unknown budget period {period!r}")


@dataclass(frozen=True)
class Budget:
    budget_id: str
    scope: str
    target: str
    period: str
    period_seconds: int | None
    limit_usd: float
    hard: bool = False
    thresholds: tuple[float, ...] | None = None   # None: the server's default

    @classmethod
    def make(cls, scope: str, target: str, limit_usd: float, period: Any = "month", *,
             hard: bool = False, thresholds=None) -> "Budget":
        if scope not in SCOPES:
            raise ConfigError(f"a budget's scope is one of {', '.join(SCOPES)}, not {scope!r}")
        target = (target or "").strip()
        if not target:
            raise ConfigError(f"a {scope} budget needs the {scope} it applies to")
        try:
            limit = float(limit_usd)
        except (TypeError, ValueError):
            raise ConfigError(f"a budget's limit is an amount in USD, not {limit_usd!r}") from None
        if not limit > 0:
            raise ConfigError("a budget's limit must be more than 0 USD")
        name, seconds = parse_period(period)
        return cls(budget_id_for(scope, target, name, seconds), scope, target, name, seconds,
                   limit, bool(hard), parse_thresholds(thresholds))

    @property
    def column(self) -> str:
        return SCOPE_COLUMNS[self.scope]

    @property
    def period_name(self) -> str:
        return period_label(self.period, self.period_seconds)

    def bounds(self, at: datetime) -> tuple[datetime, datetime]:
        return period_bounds(self.period, self.period_seconds, at)

    def effective_thresholds(self, default=DEFAULT_THRESHOLDS) -> tuple[float, ...]:
        return tuple(sorted(self.thresholds if self.thresholds is not None else default))

    def applies_to(self, key_id: str | None, project: str | None, client: str | None) -> bool:
        value = {"key": key_id, "project": project, "client": client}[self.scope]
        return value is not None and value == self.target

    def definition(self) -> tuple:
        """What decides which calls count: a change here means spend is summed again."""
        return (self.scope, self.target, self.period, self.period_seconds)

    def public(self) -> dict:
        return {"budget_id": self.budget_id, "scope": self.scope, "target": self.target,
                "period": self.period_name, "limit_usd": self.limit_usd, "hard": self.hard,
                "thresholds": None if self.thresholds is None else list(self.thresholds)}


def parse_thresholds(value) -> tuple[float, ...] | None:
    """``None``, a list of fractions, or ``'0.5,0.8,1'`` (percentages such as ``80`` too)."""
    if value is None or value == "":
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    out = []
    for item in items:
        try:
            f = float(item)
        except (TypeError, ValueError):
            raise ConfigError(f"a budget threshold is a fraction such as 0.8, not {item!r}") from None
        if f > 5:   # written as a percentage
            f /= 100.0
        if not 0 < f <= 5:
            raise ConfigError(f"a budget threshold must be more than 0, not {item!r}")
        out.append(round(f, 6))
    return tuple(sorted(set(out)))
