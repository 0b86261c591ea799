"""What each budget has spent in its current period: the store plus the journal.

Records reach usage.duckdb seconds after the call (the flusher), so the sum reads both: the
``requests`` table and every journal segment not ingested yet. Both are read under one read
lease: the flusher cannot commit meanwhile, and a segment it already committed but not yet
deleted is recognised by its request ids (already in the table) and not counted twice.
Runs in a worker thread (the server calls it on an executor), never on the event loop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from ..store import Store
from ..store.journal import ACTIVE_SUFFIX, SEALED_SUFFIX
from .budgets import Budget, utc

_FIELDS = ("request_id", "source", "started_at", "cost_usd", "project", "client", "key_id")


@dataclass
class SpendSnapshot:
    at: datetime
    spent: dict[str, float]                           # budget_id -> USD in its current period
    counted_ids: set[str] = field(default_factory=set)  # journal ids + ids of recent table rows


def journal_records(journal_dir: Path) -> list[dict]:
    """The budget-relevant fields of every record waiting in the journal (torn lines skipped)."""
    d = Path(journal_dir)
    if not d.exists():
        return []
    out = []
    for p in sorted(d.iterdir()):
        if p.suffix not in (ACTIVE_SUFFIX, SEALED_SUFFIX):
            continue
        try:
            data = p.read_bytes()
        except FileNotFoundError:   # ingested and deleted meanwhile
            continue
        for line in data.splitlines():
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and rec.get("request_id"):
                out.append({k: rec.get(k) for k in _FIELDS})
    return out


def record_time(value) -> datetime | None:
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, str):
        try:
            return utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def record_cost(value) -> float:
    if value is None:
        return 0.0
    try:
        return float(Decimal(str(value)))
    except ArithmeticError:
        return 0.0


# Every budget's sum in one scan of ``requests``: the budgets travel as parallel arrays, each
# row is matched on its budget's column, target and period. The outer bounds let DuckDB skip
# row groups outside every period (started_at zone maps).
_SPEND_SQL = """
    WITH b AS (SELECT unnest(?::VARCHAR[]) AS budget_id, unnest(?::VARCHAR[]) AS col,
                      unnest(?::VARCHAR[]) AS target, unnest(?::TIMESTAMPTZ[]) AS lo,
                      unnest(?::TIMESTAMPTZ[]) AS hi)
    SELECT b.budget_id, sum(r.cost_usd)::DOUBLE
    FROM requests r JOIN b
      ON r.started_at >= b.lo AND r.started_at < b.hi
     AND b.target = CASE b.col WHEN 'key_id' THEN r.key_id WHEN 'project' THEN r.project
                               ELSE r.client END
    WHERE r.source = 'proxy' AND r.started_at >= ? AND r.started_at < ?
    GROUP BY b.budget_id
"""


def _table_spend(con, budgets: list[Budget], periods: dict) -> dict[str, float]:
    los = [periods[b.budget_id][0] for b in budgets]
    his = [periods[b.budget_id][1] for b in budgets]
    rows = con.execute(_SPEND_SQL, [[b.budget_id for b in budgets], [b.column for b in budgets],
                                    [b.target for b in budgets], los, his,
                                    min(los), max(his)]).fetchall()
    return {bid: float(total or 0.0) for bid, total in rows}


def snapshot(store: Store, budgets: list[Budget], *, at: datetime | None = None,
             recent_since: datetime | None = None, as_of: bool = False) -> SpendSnapshot:
    """Spend of ``budgets`` in the periods holding ``at``; ``as_of``: only calls started before
    ``at``. ``recent_since``: also return the ids of table rows that ended after it (the caller
    dedupes calls it saw settle meanwhile)."""
    at = utc(at)

    periods = {}
    for b in budgets:
        start, end = b.bounds(at)
        periods[b.budget_id] = (start, min(end, at) if as_of else end)
    spent = {b.budget_id: 0.0 for b in budgets}
    with store.read() as con:
        if budgets:
            spent.update(_table_spend(con, budgets, periods))
        waiting = journal_records(store.journal_dir)
        ids = [r["request_id"] for r in waiting]
        in_table: set[str] = set()
        if ids:
            in_table = {r[0] for r in con.execute(
                "SELECT request_id FROM requests WHERE request_id IN (SELECT unnest(?::VARCHAR[]))",
                [ids]).fetchall()}
        counted = set(ids)
        if recent_since is not None:
            counted |= {r[0] for r in con.execute(
                "SELECT request_id FROM requests WHERE ended_at >= ?",
                [recent_since - timedelta(seconds=5)]).fetchall()}
    seen: set[str] = set()
    for rec in waiting:
        rid = rec["request_id"]
        if rid in in_table or rid in seen or rec.get("source") != "proxy":
            continue
        seen.add(rid)
        cost = record_cost(rec.get("cost_usd"))
        started = record_time(rec.get("started_at"))
        if not cost or started is None:
            continue
        for b in budgets:
            if b.applies_to(rec.get("key_id"), rec.get("project"), rec.get("client")):
                start, end = periods[b.budget_id]
                if start <= started < end:
                    spent[b.budget_id] += cost
    return SpendSnapshot(at, spent, counted)
