"""Turning helper arguments (since, until, project, ..., timezone) into a checked SQL WHERE.

Dates are whole days in the chosen timezone and both ends are inclusive
(``since="2026-10-01", until="2026-10-31"`` is October); a datetime is an instant, and
``until`` given as a datetime is exclusive. Naive datetimes are read in the chosen timezone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import QueryError
from .store.schema import COLUMN_NAMES

# The filters every helper takes by name; any other column of ``requests`` works as a keyword too.
NAMED_FILTERS = ("project", "client", "model", "provider", "source")
_DATE_RE = re.compile(r"^\d{4}-?\d{2}-?\d{2}$")


def zone(name: str | None) -> ZoneInfo:
    """A checked IANA timezone (default UTC)."""
    if name is None or name == "":
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise QueryError(
            f"unknown timezone {name!r}; use an IANA name such as 'UTC', 'Europe/Berlin' or "
            "'America/New_York'"
        ) from exc


def _parse_point(value: Any, tz: ZoneInfo, *, end: bool, what: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, date):
        day = value
    elif isinstance(value, str):
        text = value.strip()
        if _DATE_RE.match(text):
            digits = text.replace("-", "")
            try:
                day = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
            except ValueError as exc:
                raise QueryError(f"{what}={value!r} is not a valid date") from exc
        else:
            try:
                dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError as exc:
                raise QueryError(
                    f"{what}={value!r} is not a date (YYYY-MM-DD) or an ISO datetime"
                ) from exc
            return dt if dt.tzinfo else dt.replace(tzinfo=tz)
    else:
        raise QueryError(f"{what} must be a date, a datetime or a string, not {type(value).__name__}")
    if end:
        day = day + timedelta(days=1)
    return datetime.combine(day, time(0), tzinfo=tz)


@dataclass
class Filter:
    """A validated selection of rows of ``requests``."""

    since: datetime | None = None
    until: datetime | None = None
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    equals: dict[str, list[Any]] = field(default_factory=dict)

    @classmethod
    def build(cls, *, since=None, until=None, timezone=None, **columns) -> "Filter":
        tz = zone(timezone)
        start = _parse_point(since, tz, end=False, what="since")
        stop = _parse_point(until, tz, end=True, what="until")
        if start and stop and start >= stop:
            raise QueryError(f"since ({since}) is after until ({until})")
        equals: dict[str, list[Any]] = {}
        for name, value in columns.items():
            if name not in COLUMN_NAMES:
                raise QueryError(
                    f"unknown filter {name!r}; filter on any column of requests: "
                    + ", ".join(COLUMN_NAMES)
                )
            if value is None:
                continue
            values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
            if values:
                equals[name] = values
        return cls(start, stop, tz, equals)

    def sql(self) -> tuple[str, list[Any]]:
        """``(where_clause, params)``; the clause is ``TRUE`` when nothing is filtered."""
        parts, params = [], []
        if self.since is not None:
            parts.append("started_at >= ?")
            params.append(self.since.astimezone(timezone.utc))
        if self.until is not None:
            parts.append("started_at < ?")
            params.append(self.until.astimezone(timezone.utc))
        for name, values in self.equals.items():
            if name == "tags":
                parts.append("list_has_any(tags, ?::VARCHAR[])")
                params.append([str(v) for v in values])
            elif len(values) == 1:
                parts.append(f"{name} = ?")
                params.append(values[0])
            else:
                parts.append(f"{name} IN ({', '.join('?' for _ in values)})")
                params.extend(values)
        return (" AND ".join(parts) or "TRUE"), params
