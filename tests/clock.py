"""Pin the clock that named llmlab modules read, so a test means the same thing at any moment.

CI runs at an unknown instant: just after midnight "today" holds no calls yet, on the 1st
"this month" is one day long, and a date read at import is stale after midnight. Tests whose
expectations depend on "now" pin it here (only ``datetime.now`` changes; everything else in the
pinned modules, and every other module, keeps the real clock).
"""

from __future__ import annotations

from datetime import datetime, timezone


def frozen_datetime(instant: datetime) -> type[datetime]:
    """A ``datetime`` class whose ``now()`` is always ``instant`` (aware, any zone)."""
    if instant.tzinfo is None:
        raise ValueError("pin an aware instant")

    class FrozenDatetime(datetime):
        @classmethod
        def now(cls, tz=None):
            return instant.astimezone(tz) if tz is not None else instant.astimezone().replace(tzinfo=None)

        @classmethod
        def utcnow(cls):
            return instant.astimezone(timezone.utc).replace(tzinfo=None)

    return FrozenDatetime


def pin_now(monkeypatch, instant: datetime, *modules) -> None:
    """Make ``datetime.now()`` in each of ``modules`` return ``instant`` for this test."""
    frozen = frozen_datetime(instant)
    for module in modules:
        assert module.datetime is datetime, f"{module.__name__} does not use datetime.datetime"
        monkeypatch.setattr(module, "datetime", frozen)
