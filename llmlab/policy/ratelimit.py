"""Per-key rate limits over a sliding 60-second window: requests/min and tokens/min.

``rpm``: a call is refused when the key started ``rpm`` calls in the last 60 s. ``tpm``: a call
is refused while the tokens of the key's calls that *finished* in the last 60 s reach ``tpm``
(a call's tokens are known only at its end, so one call may overshoot, as with budgets).
The refusal says when to retry (``Retry-After``, whole seconds, at least 1): when the oldest
call/tokens leave the window enough to admit one more call. Runs on the event loop only.
"""

from __future__ import annotations

import math
from collections import deque

from ..errors import RateLimitedError

WINDOW_S = 60.0


def limited(key_id: str, what: str, limit: int, wait_s: float) -> RateLimitedError:
    retry_after = max(1, math.ceil(wait_s))
    err = RateLimitedError(f"Rate limit reached for llmlab key {key_id}: {limit} {what} per "
                           f"minute. Retry after {retry_after} s.", code="rate_limit_exceeded")
    err.headers = {"Retry-After": str(retry_after)}
    err.retry_after = retry_after
    return err


class _Window:
    __slots__ = ("starts", "tokens", "token_sum")

    def __init__(self):
        self.starts: deque[float] = deque()
        self.tokens: deque[tuple[float, int]] = deque()
        self.token_sum = 0

    def expire(self, now: float) -> None:
        edge = now - WINDOW_S
        while self.starts and self.starts[0] <= edge:
            self.starts.popleft()
        while self.tokens and self.tokens[0][0] <= edge:
            self.token_sum -= self.tokens.popleft()[1]


class RateLimiter:
    def __init__(self):
        self._windows: dict[str, _Window] = {}

    def admit(self, key_id: str, rpm: int | None, tpm: int | None, now: float) -> None:
        """Count one call start for ``key_id`` or raise :class:`RateLimitedError`."""
        if not rpm and not tpm:
            return
        w = self._windows.get(key_id)
        if w is None:
            w = self._windows[key_id] = _Window()
        w.expire(now)
        if rpm and len(w.starts) >= rpm:
            # The call that lets one more in is the (len - rpm + 1)-th oldest.
            oldest = w.starts[len(w.starts) - rpm]
            raise limited(key_id, "requests", rpm, oldest + WINDOW_S - now)
        if tpm and w.token_sum >= tpm:
            need, wait = w.token_sum - tpm + 1, WINDOW_S
            freed = 0
            for t, n in w.tokens:
                freed += n
                if freed >= need:
                    wait = t + WINDOW_S - now
                    break
            raise limited(key_id, "tokens", tpm, wait)
        w.starts.append(now)

    def used(self, key_id: str, tokens: int, now: float) -> None:
        if tokens <= 0:
            return
        w = self._windows.get(key_id)
        if w is None:
            return   # the key has no token limit (admit() made no window)
        w.tokens.append((now, tokens))
        w.token_sum += tokens

    def forget(self, keep: set[str]) -> None:
        """Drop windows of keys that are gone."""
        for k in [k for k in self._windows if k not in keep]:
            del self._windows[k]
