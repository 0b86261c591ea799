"""The in-memory budget ledger: reserve before forwarding, settle after recording.

Every method runs on the server's event loop thread, and none awaits, so "check the headroom and
reserve" is atomic: 50 concurrent calls see each other's reservations. A call is admitted while
``spent + reserved < limit`` and then reserves its estimated cost; so a hard budget is overshot
by at most the last admitted call's cost (its real cost when the estimate is an upper bound, as
it is when the request names ``max_tokens``).

Spend belongs to the period in which a call *started* (as the SQL of spend.py counts it). When a
period ends, the entry starts the next one at 0 and forgets reservations of the old one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ..errors import BudgetExceededError
from .budgets import Budget, utc


@dataclass
class Entry:
    budget: Budget
    period_start: datetime
    period_end: datetime
    spent: float = 0.0
    reserved: float = 0.0
    in_flight: int = 0

    def roll(self, now: datetime) -> None:
        if now >= self.period_end or now < self.period_start:
            self.period_start, self.period_end = self.budget.bounds(now)
            self.spent = self.reserved = 0.0
            self.in_flight = 0

    @property
    def used(self) -> float:
        return self.spent / self.budget.limit_usd if self.budget.limit_usd else 0.0

    def public(self) -> dict:
        return {**self.budget.public(), "period_start": self.period_start.isoformat(),
                "period_end": self.period_end.isoformat(), "spent_usd": self.spent,
                "reserved_usd": self.reserved, "in_flight": self.in_flight,
                "remaining_usd": self.budget.limit_usd - self.spent, "used_pct": self.used}


def _money(x: float) -> str:
    return f"${x:,.4f}" if abs(x) < 1 else f"${x:,.2f}"


def exhausted_message(e: Entry) -> str:
    """Which budget, how much is spent, when it resets (the 429's message)."""
    b = e.budget
    period = "period" if b.period == "custom" else b.period
    return (f"Budget {b.budget_id} is exhausted: the {b.scope} '{b.target}' has spent "
            f"{_money(e.spent)} of its {_money(b.limit_usd)} hard limit this {period} "
            f"({_money(e.reserved)} more reserved by calls in flight). It resets at "
            f"{e.period_end:%Y-%m-%dT%H:%M:%SZ}.")


@dataclass
class Reservation:
    amount: float
    holds: list[tuple[Entry, datetime]] = field(default_factory=list)   # entry, its period_start


@dataclass
class Settled:
    request_id: str
    started_at: datetime
    cost: float
    key_id: str | None
    project: str | None
    client: str | None


class Ledger:
    def __init__(self):
        self.entries: dict[str, Entry] = {}
        self._by_target: dict[tuple[str, str], list[Entry]] = {}
        self._capture: list[Settled] | None = None

    # -- installing budgets ---------------------------------------------------------------
    def begin_capture(self) -> None:
        """Remember settled calls until :meth:`install`: they may be missing from its snapshot."""
        self._capture = []

    def install(self, budgets: dict[str, Budget], spent: dict[str, float], counted_ids: set[str],
                at: datetime) -> list[Entry]:
        """Replace the budget set. Budgets whose definition is unchanged keep their live state;
        new or redefined ones start from ``spent`` (the snapshot) plus calls settled since the
        capture began that the snapshot did not count. Returns the entries (re)started."""
        captured = self._capture or []
        self._capture = None
        now = utc(at)
        fresh, entries = [], {}
        for bid, b in budgets.items():
            old = self.entries.get(bid)
            if old is not None and old.budget.definition() == b.definition():
                old.budget = b
                entries[bid] = old
                continue
            start, end = b.bounds(now)
            e = Entry(b, start, end, spent=spent.get(bid, 0.0))
            for s in captured:
                if s.request_id not in counted_ids and start <= s.started_at < end and \
                        b.applies_to(s.key_id, s.project, s.client):
                    e.spent += s.cost
            entries[bid] = e
            fresh.append(e)
        self.entries = entries
        self._by_target = {}
        for e in entries.values():
            self._by_target.setdefault((e.budget.scope, e.budget.target), []).append(e)
        return fresh

    # -- the request path -------------------------------------------------------------------
    def matching(self, key_id: str | None, project: str | None, client: str | None) -> list[Entry]:
        out: list[Entry] = []
        for scope, target in (("key", key_id), ("project", project), ("client", client)):
            if target is not None:
                out.extend(self._by_target.get((scope, target), ()))
        return out

    def reserve(self, entries: list[Entry], amount: float, now: datetime) -> Reservation:
        """Hold ``amount`` on every entry, or raise :class:`BudgetExceededError` for the first
        hard budget with no headroom left (then nothing is held)."""
        for e in entries:
            e.roll(now)
            if e.budget.hard and e.spent + e.reserved >= e.budget.limit_usd:
                err = BudgetExceededError(exhausted_message(e), code="insufficient_quota")
                err.entry = e
                raise err
        res = Reservation(amount)
        for e in entries:
            e.reserved += amount
            e.in_flight += 1
            res.holds.append((e, e.period_start))
        return res

    def release(self, res: Reservation | None) -> None:
        if res is None:
            return
        for e, period_start in res.holds:
            if e.period_start == period_start:
                e.reserved = max(0.0, e.reserved - res.amount)
                e.in_flight = max(0, e.in_flight - 1)
        res.holds.clear()

    def settle(self, res: Reservation | None, s: Settled, now: datetime) -> list[Entry]:
        """Release the reservation and add the real cost; returns the entries charged."""
        self.release(res)
        if self._capture is not None:
            self._capture.append(s)
        charged = []
        if not s.cost:
            return charged
        for e in self.matching(s.key_id, s.project, s.client):
            e.roll(now)
            if e.period_start <= s.started_at < e.period_end:
                e.spent += s.cost
                charged.append(e)
        return charged
