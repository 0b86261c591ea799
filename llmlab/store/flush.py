"""The flusher: ingest sealed journal segments into usage.duckdb, exactly once.

One pass, under one write lease and one transaction: seal the segments of dead writers, parse
every line of the sealed segments with DuckDB's own JSON functions (no Python loop per record),
insert the new ``request_id``s (``INSERT OR IGNORE`` against the primary key), note the flush in
``_llmlab_flushes``, commit, and only then delete the segments. A crash before the commit leaves
the segments to the next flush; a crash after it leaves segments whose records are already in,
and the primary key drops them. So no record is lost and none is counted twice.

A line that is not a JSON object with a ``request_id`` and a valid ``started_at`` (a torn write of
a killed process, a disk error) is skipped, counted and logged; the lines around it are kept.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .journal import JournalWriter, seal_orphans, sealed_segments
from .lease import write_lease
from .schema import COLUMNS

log = logging.getLogger("llmlab.store")

# Bytes of journal ingested under one lease; a bigger backlog takes several short leases so
# readers are never shut out for long.
MAX_LEASE_BYTES = 128 << 20

_JSON_COLUMNS = {"metadata", "request_body", "response_body"}


def _transform_spec() -> str:
    parts = []
    for name, typ in COLUMNS:
        if typ == "VARCHAR[]":
            parts.append(f'"{name}":["VARCHAR"]')
        elif typ in ("BIGINT", "INTEGER", "DOUBLE", "BOOLEAN"):
            parts.append(f'"{name}":"{typ}"')
        else:  # timestamps, decimals and JSON travel as text and are cast below
            parts.append(f'"{name}":"VARCHAR"')
    return "{" + ",".join(parts) + "}"


def _select_list() -> str:
    out = []
    for name, typ in COLUMNS:
        ref = f"r.{name}"
        if typ == "TIMESTAMPTZ":
            out.append(f"TRY_CAST({ref} AS TIMESTAMPTZ) AS {name}")
        elif typ.startswith("DECIMAL"):
            out.append(f"TRY_CAST({ref} AS {typ}) AS {name}")
        elif name in _JSON_COLUMNS:
            out.append(f"CASE WHEN json_valid({ref}) THEN {ref}::JSON END AS {name}")
        elif name == "tags":
            out.append(f"coalesce({ref}, []::VARCHAR[]) AS {name}")
        else:
            out.append(f"{ref} AS {name}")
    return ", ".join(out)


_TRANSFORM = _transform_spec()
_SELECT = _select_list()
_COLS = ", ".join(name for name, _ in COLUMNS)


@dataclass
class FlushResult:
    segments: int = 0
    records: int = 0
    inserted: int = 0
    duplicates: int = 0
    corrupt_lines: int = 0
    corrupt_samples: list[str] = field(default_factory=list)

    def __iadd__(self, other: "FlushResult") -> "FlushResult":
        self.segments += other.segments
        self.records += other.records
        self.inserted += other.inserted
        self.duplicates += other.duplicates
        self.corrupt_lines += other.corrupt_lines
        self.corrupt_samples.extend(other.corrupt_samples)
        return self


def _sql_list(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def _ingest(con, segments: list[Path]) -> FlushResult:
    files = _sql_list(segments)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _journal_lines AS
            SELECT filename, generate_subscripts(lines, 1) AS lineno, unnest(lines) AS line
            FROM (SELECT filename, string_split(content, chr(10)) AS lines FROM read_text({files}))
            """
        )
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _journal_rows AS
            SELECT filename, lineno, {_SELECT}
            FROM (
              SELECT filename, lineno, json_transform(line, '{_TRANSFORM}') AS r
              FROM _journal_lines
              WHERE json_valid(line) AND json_type(line) = 'OBJECT'
            )
            """
        )
        bad = con.execute(
            """
            SELECT filename, lineno, left(line, 200) FROM _journal_lines l
            WHERE trim(line) <> ''
              AND NOT EXISTS (SELECT 1 FROM _journal_rows r
                              WHERE r.filename = l.filename AND r.lineno = l.lineno
                                AND r.request_id IS NOT NULL AND r.request_id <> ''
                                AND r.started_at IS NOT NULL AND r.source IS NOT NULL)
            ORDER BY filename, lineno
            """
        ).fetchall()
        records = con.execute(
            "SELECT count(*) FROM _journal_rows WHERE request_id IS NOT NULL AND request_id <> '' "
            "AND started_at IS NOT NULL AND source IS NOT NULL"
        ).fetchone()[0]
        inserted = con.execute(
            f"""
            INSERT OR IGNORE INTO requests ({_COLS})
            SELECT {_COLS} FROM _journal_rows
            WHERE request_id IS NOT NULL AND request_id <> '' AND started_at IS NOT NULL
              AND source IS NOT NULL
            QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY filename, lineno) = 1
            """
        ).fetchone()[0]
        oldest = con.execute("SELECT min(started_at) FROM _journal_rows").fetchone()[0]
        con.execute(
            "INSERT INTO _llmlab_flushes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [datetime.now(timezone.utc), os.getpid(), len(segments), records, inserted,
             records - inserted, len(bad), oldest],
        )
        con.execute("DROP TABLE _journal_lines")
        con.execute("DROP TABLE _journal_rows")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    samples = [f"{Path(f).name}:{n}: {text!r}" for f, n, text in bad[:10]]
    for s in samples:
        log.warning("skipped a corrupt journal line %s", s)
    if len(bad) > len(samples):
        log.warning("skipped %d more corrupt journal lines", len(bad) - len(samples))
    return FlushResult(len(segments), records, inserted, records - inserted, len(bad), samples)


def _batches(segments: list[Path]) -> list[list[Path]]:
    batches: list[list[Path]] = []
    cur: list[Path] = []
    size = 0
    for seg in segments:
        try:
            n = seg.stat().st_size
        except FileNotFoundError:
            continue
        if cur and size + n > MAX_LEASE_BYTES:
            batches.append(cur)
            cur, size = [], 0
        cur.append(seg)
        size += n
    if cur:
        batches.append(cur)
    return batches


def flush(db_path: Path, journal_dir: Path, *, writer: JournalWriter | None = None,
          timeout: float | None = None, migrate_first: bool = True) -> FlushResult:
    """Ingest every sealed segment (sealing ``writer``'s current one first)."""
    from .migrations import migrate

    if writer is not None:
        writer.seal()
    total = FlushResult()
    journal_dir = Path(journal_dir)
    if not journal_dir.exists():
        return total
    first = True
    while True:
        with write_lease(db_path, timeout=timeout) as con:
            if first and migrate_first:
                migrate(con)
            first = False
            seal_orphans(journal_dir)
            # Listed under the lease: another flusher that deleted segments has committed.
            segments = sealed_segments(journal_dir)
            if not segments:
                return total
            batch = _batches(segments)[0]
            total += _ingest(con, batch)
            for seg in batch:
                try:
                    seg.unlink()
                except FileNotFoundError:
                    pass
