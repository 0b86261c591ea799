"""Virtual keys, budgets, rate limits and budget alerts on the proxy (issue: keys & budgets).

    keys.py       key format, hashing, the in-memory VirtualKey
    budgets.py    Budget, periods in UTC, thresholds
    registry.py   keys/budgets/alerts in usage.duckdb (short leases) + the policy.stamp file
    spend.py      spend per budget from the store and the journal
    ledger.py     in-memory reserve/settle (no overspend under concurrency)
    ratelimit.py  requests/min and tokens/min per key
    hook.py       PolicyHook: the ProxyService hook tying them together
    report.py     lab.budgets(), lab.alerts(), lab.keys

docs/users/budgets.md (how to use) and docs/developers/budgets.md (why it is built this way).
"""

from .budgets import Budget, period_bounds
from .keys import VirtualKey
from .registry import CreatedKey

__all__ = ["Budget", "VirtualKey", "CreatedKey", "period_bounds"]
