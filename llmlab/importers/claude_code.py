"""Import Claude Code's session logs into the usage store (source ``claude-code``).

    from llmlab.importers import import_claude_code
    result = import_claude_code(store)                 # the logs Claude Code itself writes
    result = import_claude_code(store, ["path/to/another/.claude"], progress=True)

One row per deduplicated assistant message, keyed by ccusage's dedup key, so importing twice,
or a message logged once per content block, never counts twice (claude_sql.py has the rules).

Incremental: ``_llmlab_log_files`` remembers, per file, its size and mtime and how far it was
read (bytes and lines up to the last newline). An unchanged file is not opened; a grown file is
read from where the last import stopped; a file that shrank or whose bytes before that point
changed is read again from the start (idempotent: rows are keyed by message).

Cold path: batches of files are read, split, filtered, parsed and priced by DuckDB in an
in-memory database, several batches in parallel (claude_batch.py). Their rows collect in memory
and go into ``requests`` in chunks of about ``FLUSH_ROWS`` rows, written by one writer thread
while parsing goes on, each chunk under one short write lease and in one transaction with its
files' new read positions: a crash loses nothing and counts nothing twice, and other processes
are never shut out for more than a moment.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import LogImportError
from ..paths import db_path_for
from . import claude_seen
from . import claude_sql as q
from .claude_paths import LogFile, config_dirs, log_files

if TYPE_CHECKING:
    from ..store import Store
    from .claude_batch import Parsed, Work

log = logging.getLogger("llmlab.importers")

SOURCE = "claude-code"
# Rows written under one write lease (about a second). Smaller chunks start the writer sooner
# and leave less to write once parsing ends; 70k beat 100k by ~7% of wall time and CPU on
# 1 GB (12 alternating pairs), 50k and 130k were slower (benchmarks/RESULTS.md).
FLUSH_ROWS = 70_000
_TAIL_HASH_BYTES = 64


@dataclass
class ImportResult:
    """What one import did."""

    files_seen: int = 0
    files_unchanged: int = 0
    files_read: int = 0
    bytes_read: int = 0
    lines_considered: int = 0      # lines containing "usage":{
    entries: int = 0               # valid usage entries (advisor iterations included)
    rows_written: int = 0          # rows inserted, or replaced by a better duplicate
    replays_merged: int = 0        # sidechain replays merged into their message
    dropped: Counter = field(default_factory=Counter)   # reason -> lines
    dropped_samples: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def dropped_lines(self) -> int:
        return sum(self.dropped.values())

    def summary(self) -> str:
        parts = [f"{self.files_read} of {self.files_seen} files read "
                 f"({self.bytes_read / 2**20:.1f} MiB), {self.entries} usage entries, "
                 f"{self.rows_written} rows written"]
        if self.replays_merged:
            parts.append(f"{self.replays_merged} sidechain replays merged")
        if self.dropped:
            parts.append(f"{self.dropped_lines} lines dropped ("
                         + ", ".join(f"{n} {r}" for r, n in self.dropped.most_common()) + ")")
        return "; ".join(parts) + f" in {self.seconds:.2f}s"


def import_claude_code(store: Store | str | os.PathLike | None,
                       paths: list[str | os.PathLike] | None = None, *,
                       since: date | datetime | str | None = None, rescan: bool = False,
                       progress: bool = False, workers: int | None = None,
                       pricebook=None) -> ImportResult:
    """Import new Claude Code log lines into ``store``; returns what was done.

    ``store``: a :class:`~llmlab.store.Store`, or its home folder or ``.duckdb`` file (None: the
    default home). With nothing new to read, neither DuckDB nor the store file is opened
    (claude_seen.py), which keeps ``llmlab import claude-code`` quick enough to run often.
    ``paths``: Claude config folders (holding ``projects/``) or ``projects/`` folders; default:
    where Claude Code writes (``CLAUDE_CONFIG_DIR``, ``$XDG_CONFIG_HOME/claude``, ``~/.claude``).
    ``since``: skip files last written before this day (a later run without it imports them).
    ``rescan``: read every file from the start (rows already stored are not duplicated).
    Safe to call from a server thread on a schedule: it never holds the store for long.
    """
    started = time.perf_counter()
    result = ImportResult()
    files = log_files(config_dirs(paths))
    if since is not None:
        cutoff = _cutoff_ns(since)
        files = [f for f in files if f.mtime_ns >= cutoff]
    result.files_seen = len(files)
    db_path, home = _where(store)
    if files and not rescan and claude_seen.all_unchanged(db_path, home, files):
        result.files_unchanged = len(files)
        return _done(result, started)
    store = _store_of(store)
    works = _plan(files, {} if rescan else _positions(store), result) if files else []
    if works:
        from ..pricing import default_pricebook
        from .claude_batch import memory_db, parse_all

        book = pricebook or default_pricebook()
        bar = _bar(sum(max(w.file.size - w.offset, 0) for w in works if w.read), progress)
        mem = memory_db()
        try:
            _write_while_parsing(store, mem, parse_all(mem, works, book, workers), result, bar)
        finally:
            bar.close()
            mem.close()
        _positions(store)  # the mirror of what is read now (claude_seen.py)
    return _done(result, started)


def _write_while_parsing(store: Store, mem, parsed_batches, result: ImportResult, bar) -> None:
    """Parsed batches into the store in chunks of ``FLUSH_ROWS`` rows, in order, by one writer
    thread, so parsing goes on while a chunk is written (a few % less wall time on 1 GB with two
    cores). At most one chunk waits for the writer, so memory stays bounded."""
    import queue
    import threading

    chunks: queue.Queue = queue.Queue(maxsize=1)
    failed: list[BaseException] = []
    cursor = mem.cursor()  # the writer's own: a DuckDB connection is not shared across threads

    def writer():
        try:
            store.ensure()  # a new store is created while the first batches parse
        except BaseException as exc:  # noqa: BLE001 - raised in the importing thread
            failed.append(exc)
        while (chunk := chunks.get()) is not None:
            try:
                if not failed:
                    _flush(store, cursor, chunk, result)
            except BaseException as exc:  # noqa: BLE001 - raised in the importing thread
                failed.append(exc)

    thread = threading.Thread(target=writer, name="llmlab-cc-writer", daemon=True)
    thread.start()
    held: list[Parsed] = []
    n_rows = 0
    try:
        for parsed in parsed_batches:
            if failed:
                break
            held.append(parsed)
            n_rows += parsed.rows.num_rows
            bar.update(parsed.nbytes)
            if n_rows >= FLUSH_ROWS:
                chunks.put(held)
                held, n_rows = [], 0
        else:
            if held:
                chunks.put(held)
    finally:
        close = getattr(parsed_batches, "close", None)
        if close is not None:   # stop parsing (a failed write): its threads use ``mem``
            close()
        chunks.put(None)
        thread.join()
        cursor.close()
    if failed:
        raise failed[0]


def _done(result: ImportResult, started: float) -> ImportResult:
    result.seconds = time.perf_counter() - started
    log.info("claude-code import: %s", result.summary())
    return result


def _where(store) -> tuple[Path, Path]:
    """(store file, home folder) of a Store or of a path naming one, without opening anything."""
    if hasattr(store, "db_path"):
        return Path(store.db_path), Path(store.home)
    db_path = db_path_for(store)
    return db_path, db_path.parent


def _store_of(store) -> Store:
    if hasattr(store, "db_path"):
        return store
    from ..store import Store

    return Store(store)


def _cutoff_ns(since) -> int:
    if isinstance(since, str):
        try:
            since = date.fromisoformat(since.strip())
        except ValueError as exc:
            raise LogImportError(f"since={since!r} is not a date (YYYY-MM-DD)") from exc
    if isinstance(since, datetime):
        moment = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
    else:
        moment = datetime(since.year, since.month, since.day, tzinfo=timezone.utc)
    return int(moment.timestamp() * 1e9)


def _positions(store: Store) -> dict[str, tuple]:
    """What the store has read of each file; also refreshes the mirror (claude_seen.py)."""
    if not store.db_path.exists():
        return {}
    with store.read() as con:
        rows = con.execute(
            "SELECT path, size, mtime_ns, consumed_bytes, consumed_lines, tail_hash, "
            "coalesce(entries, 0), coalesce(dropped_lines, 0) "
            "FROM _llmlab_log_files WHERE source = ?", [SOURCE]).fetchall()
        # Inside the lease: nobody can write the file, so the stamp belongs to these rows.
        stamp = claude_seen.store_stamp(store.db_path)
    claude_seen.save(store.db_path, store.home, stamp, {r[0]: (r[1], r[2]) for r in rows})
    return {r[0]: r[1:] for r in rows}


def _plan(files: list[LogFile], known: dict[str, tuple], result: ImportResult) -> list[Work]:
    from .claude_batch import Work

    works = []
    for f in files:
        state = known.get(f.path)
        if state is None:
            works.append(Work(f))
            continue
        size, mtime_ns, consumed, lines, tail, entries, dropped = state
        if size == f.size and mtime_ns == f.mtime_ns:
            result.files_unchanged += 1
            continue
        if f.size >= consumed and tail_hash(f.path, consumed) == tail:
            works.append(Work(f, consumed, lines, read=f.size > consumed, entries=entries,
                              dropped=dropped))
        else:  # rewritten, truncated or replaced: read it again from the start
            works.append(Work(f))
    return works


def tail_hash(path: str, end: int) -> str:
    """Fingerprint of the bytes just before ``end``: it changes if the file was rewritten."""
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, end - _TAIL_HASH_BYTES))
            data = fh.read(min(end, _TAIL_HASH_BYTES))
    except OSError:
        return ""
    return hashlib.sha1(data).hexdigest()


def _flush(store: Store, mem, held: list[Parsed], result: ImportResult) -> None:
    """Rows of ``held`` batches into the store with their files' read positions; one transaction."""
    if not held:
        return
    import pyarrow as pa

    from .claude_batch import temp_table

    rows = [p.rows for p in held if p.rows.num_rows]
    batch = _dedup(mem, pa.concat_tables(rows)) if rows else None
    state = _state_columns(held)
    written = merged = 0
    with store.write() as con:
        con.execute("BEGIN TRANSACTION")
        try:
            temp_table(con, "cc_state", state)
            if batch is not None:
                con.register("cc_batch", batch)
                written, merged = _write_rows(con, batch.num_rows)
            con.execute(
                "INSERT OR REPLACE INTO _llmlab_log_files (path, source, size, mtime_ns, "
                "consumed_bytes, consumed_lines, tail_hash, entries, dropped_lines, imported_at) "
                "SELECT * FROM cc_state")
            con.execute("DROP TABLE cc_state")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    for p in held:
        result.files_read += sum(1 for w in p.works if w.read)
        result.bytes_read += p.nbytes
        result.lines_considered += p.considered
        result.entries += p.entries
        result.dropped.update(p.dropped)
        if len(result.dropped_samples) < 10:
            result.dropped_samples.extend(p.samples[: 10 - len(result.dropped_samples)])
    result.rows_written += int(written)
    result.replays_merged += int(merged)


def _dedup(mem, rows):
    """One row per message across batches (each batch is deduplicated already, so only keys
    seen in several batches -- a resumed session, a replay in another file -- need work)."""
    cur = mem.cursor()
    try:
        cur.register("cc_held", rows)
        # fetchall, not fetchone: a result not read to its end keeps the cursor busy, and
        # DuckDB refuses the query below on it.
        if not cur.execute("SELECT count(*) FROM (SELECT request_id FROM cc_held GROUP BY 1 "
                           "HAVING count(*) > 1)").fetchall()[0][0]:
            return rows
        return cur.sql(f"""
            WITH dup AS (SELECT request_id FROM cc_held GROUP BY 1 HAVING count(*) > 1)
            SELECT * FROM cc_held WHERE request_id NOT IN (SELECT request_id FROM dup)
            UNION ALL
            SELECT * FROM (SELECT * FROM cc_held WHERE request_id IN (SELECT request_id FROM dup)
                           QUALIFY row_number() OVER (PARTITION BY request_id
                                                      ORDER BY {q.KEEP_ORDER_SQL}) = 1)
        """).to_arrow_table()
    finally:
        cur.close()


def _write_rows(con, n_rows: int) -> tuple[int, int]:
    """``cc_batch`` into ``requests`` (new rows, better duplicates), replays merged, and the
    rollup's buckets of every row touched recomputed so the query helpers stay on their fast
    path. Returns (rows written, replays merged)."""
    from ..store import rollup

    con.execute("CREATE OR REPLACE TEMP TABLE cc_touched AS SELECT started_at FROM cc_batch")
    con.execute("INSERT INTO cc_touched SELECT r.started_at FROM requests r "
                "JOIN cc_batch b ON r.request_id = b.request_id")
    stored = con.execute("SELECT count(*) FROM cc_touched").fetchone()[0] - n_rows
    written = 0
    if stored:
        # Better duplicates first: the insert below would make them look stored already.
        written += con.execute(q.UPDATE_BETTER_SQL).fetchone()[0]
        written += con.execute(q.INSERT_NEW_SQL).fetchone()[0]
    else:
        written += con.execute(q.INSERT_ALL_SQL).fetchone()[0]
    con.execute(q.REPLAYED_SQL)
    merged = con.execute(q.DELETE_REPLAYED_SQL).fetchone()[0]
    con.execute("INSERT INTO cc_touched SELECT started_at FROM cc_replayed")
    rollup.touch(con, "cc_touched")
    for t in ("cc_touched", "cc_replayed"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    return int(written), int(merged)


def _state_columns(held: list[Parsed]):
    """New ``_llmlab_log_files`` rows of the files in ``held`` (unreadable files are left out),
    as columns for ``temp_table``."""
    now = datetime.now(timezone.utc)
    cols: dict[str, list] = {k: [] for k in (
        "path", "source", "size", "mtime_ns", "consumed_bytes", "consumed_lines", "tail_hash",
        "entries", "dropped_lines", "imported_at")}
    for p in held:
        for w in p.works:
            if w.read and w.file.path not in p.positions:
                continue  # could not be read: try again next time
            consumed, lines = p.positions.get(w.file.path, (w.offset, w.base_line))
            new_entries, new_dropped = p.per_file.get(w.file.path, (0, 0))
            for k, v in (("path", w.file.path), ("source", SOURCE), ("size", w.file.size),
                         ("mtime_ns", w.file.mtime_ns), ("consumed_bytes", consumed),
                         ("consumed_lines", lines), ("tail_hash", tail_hash(w.file.path, consumed)),
                         ("entries", w.entries + new_entries),
                         ("dropped_lines", w.dropped + new_dropped), ("imported_at", now)):
                cols[k].append(v)
    types = dict.fromkeys(cols, "BIGINT")
    types.update(path="VARCHAR", source="VARCHAR", tail_hash="VARCHAR", imported_at="TIMESTAMPTZ")
    return {k: (types[k], v) for k, v in cols.items()}


def _bar(total: int, enabled: bool):
    if not enabled:  # tqdm costs a quiet command ~60 ms of start-up (importlib.metadata)
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="claude-code import", unit="B", unit_scale=True,
                unit_divisor=1024)


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass
