"""Export the selected calls to CSV or Parquet with DuckDB's own writers (no pandas round trip)."""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError
from .filters import Filter
from .store import Store
from .store.schema import COLUMN_NAMES

FORMATS = {"csv": "(FORMAT CSV, HEADER TRUE)", "parquet": "(FORMAT PARQUET, COMPRESSION ZSTD)"}


def export(store: Store, out: Path, *, fmt: str, bodies: bool = False, since=None, until=None,
           timezone=None, **filters) -> int:
    """Write the selection to ``out``; returns the number of rows written."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose csv or parquet")
    f = Filter.build(since=since, until=until, timezone=timezone, **filters)
    where, params = f.sql()
    cols = [c for c in COLUMN_NAMES if bodies or c not in ("request_body", "response_body")]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    target = str(out.resolve()).replace("'", "''")
    with store.read() as con:
        # COPY writes files, which a read-only connection may do; it returns the row count.
        n = con.execute(
            f"COPY (SELECT {', '.join(cols)} FROM requests WHERE {where} ORDER BY started_at, request_id) "
            f"TO '{target}' {FORMATS[fmt]}", params).fetchone()
    return int(n[0]) if n else 0
