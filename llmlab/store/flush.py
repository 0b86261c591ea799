"""The flusher: ingest sealed journal segments into usage.duckdb, exactly once.

One pass, under one write lease and one transaction: seal the segments of dead writers, insert
their records straight from DuckDB's NDJSON reader (no Python loop per record), skipping every
``request_id`` already stored or seen earlier in the batch (``_UNSEEN``), fold the inserted rows
into the rollup, note the flush in ``_llmlab_flushes``, commit, and only then delete the
segments. A crash before the commit leaves the segments to the next flush; a crash after it
leaves segments whose records are already in, and the next flush skips them. So no record is
lost and none is counted twice.

The reader is strict. When a batch holds a line that is not a record (a torn write of a killed
process, a disk error, bytes that are not UTF-8), the pass takes the careful path instead: every
line is parsed on its own, the bad ones are skipped, counted and logged, the lines around them
are kept. docs/developers/storage.md has the whole story.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb

from . import rollup
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


_LINES_SQL = """
    CREATE OR REPLACE TEMP TABLE _journal_lines AS
    SELECT filename, generate_subscripts(lines, 1) AS lineno, unnest(lines) AS line
    FROM (SELECT filename, string_split(content, chr(10)) AS lines FROM read_text({files}))
"""


def _load_lines(con, segments: list[Path]) -> list[tuple[str, int, str]]:
    """Fill ``_journal_lines`` (filename, lineno, line); return lines that are not UTF-8.

    DuckDB's ``read_text`` refuses a whole file over one undecodable byte (a disk error, a torn
    write). Such a file would block every later flush, so its lines are split in Python instead:
    the undecodable ones are returned as corrupt and the rest are ingested as usual.
    """
    try:
        con.execute(_LINES_SQL.format(files=_sql_list(segments)))
        return []
    except duckdb.InvalidInputException as exc:
        if "UTF-8" not in str(exc):
            raise
    # The failed statement aborted the transaction; nothing had been written yet.
    con.execute("ROLLBACK")
    con.execute("BEGIN TRANSACTION")
    clean, names, numbers, texts, undecodable = [], [], [], [], []
    for seg in segments:
        data = seg.read_bytes()
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            for lineno, raw in enumerate(data.split(b"\n"), 1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    undecodable.append((str(seg), lineno, raw[:200].decode("utf-8", "replace")))
                    continue
                names.append(str(seg))
                numbers.append(lineno)
                texts.append(text)
        else:
            clean.append(seg)
    if clean:
        con.execute(_LINES_SQL.format(files=_sql_list(clean)))
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE _journal_lines "
                    "(filename VARCHAR, lineno BIGINT, line VARCHAR)")
    if texts:
        import pyarrow as pa

        con.register("_journal_py_lines", pa.table(
            {"filename": names, "lineno": pa.array(numbers, pa.int64()), "line": texts}))
        con.execute("INSERT INTO _journal_lines SELECT filename, lineno, line FROM _journal_py_lines")
        con.unregister("_journal_py_lines")
    return undecodable


_VALID = ("request_id IS NOT NULL AND request_id <> '' AND started_at IS NOT NULL "
          "AND source IS NOT NULL")


def _fast_columns() -> tuple[str, str]:
    """(columns= struct for read_json, select list) of the fast path."""
    spec, select = [], []
    for name, typ in COLUMNS:
        if name in _JSON_COLUMNS:
            # Text that is not JSON makes the cast raise, and the careful path stores NULL.
            spec.append(f"'{name}': 'VARCHAR'")
            select.append(f"{name}::JSON AS {name}")
        else:
            spec.append(f"'{name}': '{typ}'")
            select.append(f"coalesce({name}, []::VARCHAR[]) AS {name}" if name == "tags" else name)
    return "{" + ", ".join(spec) + "}", ", ".join(select)


_FAST_SPEC, _FAST_SELECT = _fast_columns()


_RETURNING = ", ".join(rollup.SOURCE_COLUMNS)

# Rows of ``j`` whose request_id is not stored, the first of each id in ``j`` (``_line``
# order). ``requests`` has no primary key (migration m005): uniqueness is every writer's own
# insert, under the write lease that serialises writers. At 5M stored rows this anti-join
# costs what the key's INSERT OR IGNORE did (~90 ms for 100 or 1,000 new rows).
_UNSEEN = """
    WHERE NOT EXISTS (SELECT 1 FROM requests r WHERE r.request_id = j.request_id)
    QUALIFY row_number() OVER (PARTITION BY j.request_id ORDER BY j._line) = 1
"""


def _read_json(segments: list[Path], spec: str) -> str:
    return f"read_json({_sql_list(segments)}, columns = {spec}, format = 'newline_delimited')"


def _count_records(segments: list[Path]) -> int:
    """Lines that hold something, counted from the bytes (the files are in the page cache)."""
    n = 0
    for seg in segments:
        data = seg.read_bytes()
        n += data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
        n -= data.count(b"\n\n") + (1 if data.startswith(b"\n") else 0)  # blank lines
    return n


def _insert_fast(con, segments: list[Path]):
    """Insert straight from DuckDB's NDJSON reader: ``(new_rows, records, bad, oldest)``.

    Strict and several times faster than splitting lines ourselves: a malformed line, a wrong
    type, a bad timestamp or an object that is not a record (``error()`` below) makes it fail,
    and then (None) the caller takes the line-by-line path that skips and counts exactly the bad
    lines. Nothing is kept from the failed attempt. Every line being a record, the records are
    the lines.
    """
    select = _FAST_SELECT.replace(
        "request_id", f"CASE WHEN {_VALID} THEN request_id "
                      "ELSE error('llmlab: a journal line is not a record') END AS request_id", 1)
    try:
        new_rows = rollup.fetch_arrow(con.execute(f"""
            INSERT INTO requests ({_COLS})
            SELECT {_COLS} FROM (
              SELECT {select}, row_number() OVER () AS _line
              FROM {_read_json(segments, _FAST_SPEC)}) j
            {_UNSEEN}
            RETURNING {_RETURNING}
        """))
    except duckdb.Error:
        con.execute("ROLLBACK")  # the failed statement aborted the transaction
        con.execute("BEGIN TRANSACTION")
        return None
    import pyarrow.compute as pc

    oldest = _utc_datetime(pc.min(new_rows["started_at"])) if new_rows.num_rows else None
    return new_rows, _count_records(segments), [], oldest


_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def _utc_datetime(scalar) -> datetime | None:
    """An Arrow timestamp scalar as a UTC datetime. Not ``as_py()``: for zoned timestamps it
    imports pandas, seconds of GIL that stalled the server's calls during its first flush."""
    if not scalar.is_valid:
        return None
    per_second = _PER_SECOND[scalar.type.unit]
    seconds, fraction = divmod(scalar.value, per_second)
    return (datetime.fromtimestamp(seconds, timezone.utc)
            + timedelta(microseconds=fraction * 1_000_000 // per_second))


def _read_line_by_line(con, segments: list[Path]) -> list[tuple[str, int, str]]:
    """Fill ``_journal_rows`` from every parseable line; return the bad lines."""
    undecodable = _load_lines(con, segments)
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
        f"""
        SELECT filename, lineno, left(line, 200) FROM _journal_lines l
        WHERE trim(line) <> ''
          AND NOT EXISTS (SELECT 1 FROM _journal_rows r
                          WHERE r.filename = l.filename AND r.lineno = l.lineno AND {_VALID})
        ORDER BY filename, lineno
        """
    ).fetchall()
    con.execute("DROP TABLE _journal_lines")
    return sorted(bad + undecodable)


def _insert_line_by_line(con, segments: list[Path]):
    bad = _read_line_by_line(con, segments)
    records = con.execute(f"SELECT count(*) FROM _journal_rows WHERE {_VALID}").fetchall()[0][0]
    # RETURNING hands back only the rows really inserted.
    new_rows = rollup.fetch_arrow(con.execute(
        f"INSERT INTO requests ({_COLS}) SELECT {_COLS} FROM ("
        f"  SELECT *, row_number() OVER (ORDER BY filename, lineno) AS _line FROM _journal_rows"
        f"  WHERE {_VALID}) j {_UNSEEN} RETURNING {_RETURNING}"))
    oldest = con.execute("SELECT min(started_at) FROM _journal_rows").fetchall()[0][0]
    con.execute("DROP TABLE _journal_rows")
    return new_rows, records, bad, oldest


def _ingest(con, segments: list[Path]) -> FlushResult:
    con.execute("BEGIN TRANSACTION")
    try:
        has_rollup = rollup.exists(con)
        rollup_fresh = has_rollup and rollup.is_fresh(con)  # judged before our own insert
        done = _insert_fast(con, segments) or _insert_line_by_line(con, segments)
        new_rows, records, bad, oldest = done
        inserted = new_rows.num_rows
        # The rows really inserted (not the ignored duplicates) are exactly what the rollup adds.
        if rollup_fresh:
            rollup.add(con, new_rows)
        elif has_rollup:
            rollup.rebuild(con)  # someone wrote into requests without it: start over
        con.execute(
            "INSERT INTO _llmlab_flushes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [datetime.now(timezone.utc), os.getpid(), len(segments), records, inserted,
             records - inserted, len(bad), oldest],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    samples = [f"{Path(f).name}:{n if n is not None else '?'}: {text!r}" for f, n, text in bad[:10]]
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
                # Nothing to ingest; still repair a rollup that a direct writer left stale.
                con.execute("BEGIN TRANSACTION")
                rollup.refresh(con)
                con.execute("COMMIT")
                return total
            batch = _batches(segments)[0]
            total += _ingest(con, batch)
            for seg in batch:
                try:
                    seg.unlink()
                except FileNotFoundError:
                    pass
