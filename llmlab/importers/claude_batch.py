"""One batch of the Claude Code import: log text in, request rows out (in-memory DuckDB).

Workers run :func:`parse` on batches of files in parallel, each in its own cursor of one
in-memory DuckDB database, so the store is not touched while parsing. The SQL is in
``claude_sql.py``; this module feeds it (files read by DuckDB, or tails read in Python) and
collects what comes out: rows, read positions, drop counts.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb

from .. import cpu_priority
from . import claude_sql as q
from .claude_paths import LogFile

log = logging.getLogger("llmlab.importers")

BATCH_BYTES = 96 << 20          # log bytes parsed per batch (fewer, larger: less fixed cost)
_PICO = Decimal(10) ** 12
_DUCKDB_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


@dataclass
class Work:
    file: LogFile
    offset: int = 0          # first byte to read
    base_line: int = 0       # lines before ``offset``
    read: bool = True        # False: only the recorded size/mtime change
    entries: int = 0         # usage entries and dropped lines already counted before ``offset``
    dropped: int = 0


@dataclass
class Parsed:
    works: list[Work]
    rows: object                      # pyarrow.Table of request rows
    positions: dict[str, tuple[int, int]]   # path -> (consumed bytes, consumed lines)
    per_file: dict[str, tuple[int, int]]    # path -> (entries, dropped lines) in what was read
    entries: int
    considered: int
    dropped: Counter
    samples: list[str]
    nbytes: int


def batches(works: list[Work]) -> list[list[Work]]:
    batches: list[list[Work]] = []
    cur: list[Work] = []
    size = 0
    for w in works:
        n = max(w.file.size - w.offset, 0) if w.read else 0
        if cur and size + n > BATCH_BYTES:
            batches.append(cur)
            cur, size = [], 0
        cur.append(w)
        size += n
    if cur:
        batches.append(cur)
    return batches


def parse_all(mem: duckdb.DuckDBPyConnection, works: list[Work], book, workers: int | None):
    """Parse ``works`` in batches, ``workers`` at a time (cursors of ``mem``); yields them in order."""
    todo = batches(works)
    workers = max(1, min(workers or os.cpu_count() or 2, len(todo)))
    if workers == 1:
        for b in todo:
            yield parse(mem.cursor(), b, book)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llmlab-cc-import",
                            initializer=_yield_to_the_writer) as pool:
        pending = []
        try:
            read_ahead(todo[0])
            for k, b in enumerate(todo):
                while len(pending) > workers:  # at most workers + 1 batches in memory at once
                    yield pending.pop(0).result()
                pending.append(pool.submit(parse, mem.cursor(), b, book))
                if k + 1 < len(todo):
                    read_ahead(todo[k + 1])   # read by the kernel while the batches before parse
            while pending:
                yield pending.pop(0).result()
        finally:
            # Closed early (the writer failed): start nothing more; leaving the pool waits for
            # the batches already running, so ``mem`` is idle when the caller closes it.
            for fut in pending:
                fut.cancel()


PARSE_NICENESS = 5   # added to the parse threads' nice value


def _yield_to_the_writer() -> None:
    """Run this parse thread at a lower priority than the thread that started the import.

    Why: the store writer runs beside the parse threads, three busy threads on two cores; at
    equal priority it fell behind and wrote alone for a second after parsing ended while a
    core idled. Deprioritised parse threads let it keep up: 8 of 8 alternating runs on 1 GB
    were faster (~4%, benchmarks/RESULTS.md). The same keeps a scheduled import from taking
    CPU from the notebooks it runs beside. Relative, so ``nice llmlab import`` stays nicer."""
    cpu_priority.set_this_thread(cpu_priority.this_thread() + PARSE_NICENESS)


def read_ahead(works: list[Work]) -> None:
    """Ask the kernel to start reading these files' new bytes now (``POSIX_FADV_WILLNEED``
    returns at once; the reads proceed while earlier batches parse). Why: with the page cache
    cold, the import spent ~1.2 s more than warm against ccusage's ~0.4 s, its two parse
    threads each waiting on one file at a time. A hint: a file that cannot be opened is left to
    the parse, which reports it."""
    if not hasattr(os, "posix_fadvise"):   # macOS, Windows
        return
    for w in works:
        if not w.read:
            continue
        try:
            fd = os.open(w.file.path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, w.offset, 0, os.POSIX_FADV_WILLNEED)
            finally:
                os.close(fd)
        except OSError:
            pass


def memory_db(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """The in-memory database batches are parsed in (never the store). One DuckDB thread per
    query: the parallelism is across batches (``parse_all``), which splits the work evenly."""
    con = duckdb.connect(":memory:", config=dict(_DUCKDB_CONFIG, threads=threads or 1))
    con.execute("SET TimeZone = 'UTC'")
    return con


def parse(con: duckdb.DuckDBPyConnection, works: list[Work], book) -> Parsed:
    try:
        con.execute("SET TimeZone = 'UTC'")
        temp_table(con, "cc_files", {
            "filename": ("VARCHAR", [w.file.path for w in works]),
            "project": ("VARCHAR", [w.file.project for w in works]),
            "session_id": ("VARCHAR", [w.file.session_id for w in works]),
        })
        fresh = [w for w in works if w.read and w.offset == 0]
        tails = [w for w in works if w.read and w.offset > 0]
        positions: dict[str, tuple[int, int]] = {}
        nbytes = sum(max(w.file.size - w.offset, 0) for w in works if w.read)
        if fresh:
            try:
                con.execute(q.parse_sql(
                    "(SELECT filename, 0::BIGINT AS base_line, content FROM read_text("
                    + _sql_list([w.file.path for w in fresh]) + "))"))
            except (duckdb.InvalidInputException, duckdb.IOException) as exc:
                if not isinstance(exc, duckdb.IOException) and "UTF-8" not in str(exc):
                    raise
                # A byte that is not UTF-8 (a torn write) or a file that vanished: read these
                # files in Python instead, replacing bad bytes; the lines around them are kept.
                tails, fresh = fresh + tails, []
        if tails:
            tail_cols, tail_pos = _read_tails(tails)
            temp_table(con, "cc_tails", tail_cols)
            con.execute(q.parse_sql("cc_tails", append=bool(fresh)))
            positions.update(tail_pos)
        # One pass over the parsed lines for everything but the rows: per file, how far it was
        # read and how many lines counted or were dropped; models to price; advisor lines.
        per_file: dict[str, tuple[int, int]] = {}
        for f, consumed, n_lines, kept, lost in con.execute(
                "SELECT filename, max(consumed) FILTER (WHERE is_footer), "
                "max(n_lines) FILTER (WHERE is_footer), "
                "count(*) FILTER (WHERE NOT is_footer AND drop_reason IS NULL), "
                "count(drop_reason) FROM cc_parsed GROUP BY 1").fetchall():
            per_file[f] = (int(kept), int(lost))
            if f not in positions and consumed is not None:
                positions[f] = (int(consumed), int(n_lines))
        con.execute(q.ADVISOR_SQL if con.execute(
            "SELECT count(iterations) FROM cc_parsed").fetchone()[0] else q.NO_ADVISOR_SQL)
        models = [r[0] for r in con.execute(
            "SELECT raw_model FROM cc_parsed WHERE raw_model IS NOT NULL AND drop_reason IS NULL "
            "UNION SELECT raw_model FROM cc_advisor").fetchall()]
        temp_table(con, "cc_rates", _rates_columns(book, models))
        rows = con.sql(q.ROWS_SQL).to_arrow_table()
        dropped = Counter(dict(con.execute(
            "SELECT drop_reason, count(*) FROM cc_parsed WHERE drop_reason IS NOT NULL "
            "GROUP BY 1").fetchall()))
        samples = [f"{Path(f).name}:{n}: {reason}: {text!r}" for f, n, reason, text in con.execute(
            "SELECT filename, line_no, drop_reason, left(dropped_line, 120) FROM cc_parsed "
            "WHERE drop_reason IS NOT NULL ORDER BY filename, line_no LIMIT 5").fetchall()
            ] if dropped else []
        considered = sum(k + d for k, d in per_file.values())
        entries = sum(k for k, _ in per_file.values()) + con.execute(
            "SELECT count(*) FROM cc_advisor").fetchone()[0]
        return Parsed(works, rows, positions, per_file, int(entries), considered, dropped,
                      samples, nbytes)
    finally:
        con.close()


def temp_table(con: duckdb.DuckDBPyConnection, name: str, cols: dict[str, tuple[str, list]]):
    """A temp table ``name`` of ``{column: (SQL type, values)}``, built by DuckDB from Python
    lists. Not ``pyarrow.table``: pyarrow imports pandas for a table made of lists, which
    costs a cold import a third of a second."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT "
                + ", ".join(f"unnest(?::{t}[]) AS {c}" for c, (t, _) in cols.items()),
                [v for _, v in cols.values()])


def _read_tails(works: list[Work]):
    """The complete new lines of each file past its read position, read in Python: the
    columns of ``cc_tails`` (see ``temp_table``) and the new read positions."""
    names, bases, contents = [], [], []
    positions: dict[str, tuple[int, int]] = {}
    for w in works:
        try:
            with open(w.file.path, "rb") as fh:
                fh.seek(w.offset)
                data = fh.read()
        except OSError as exc:
            log.warning("cannot read %s: %s", w.file.path, exc)
            continue
        end = data.rfind(b"\n") + 1  # a cut-off last line waits for its newline
        chunk = data[:end]
        names.append(w.file.path)
        bases.append(w.base_line)
        contents.append(chunk.decode("utf-8", errors="replace"))
        positions[w.file.path] = (w.offset + end, w.base_line + chunk.count(b"\n"))
    return {"filename": ("VARCHAR", names), "base_line": ("BIGINT", bases),
            "content": ("VARCHAR", contents)}, positions


def _rates_columns(book, models: list[str]):
    """Per-token rates of the batch's models in integer picodollars (1e-12 USD): the columns
    of ``cc_rates`` (see ``temp_table``)."""
    names = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h", "input_above",
             "output_above", "cache_read_above", "cache_write_5m_above", "cache_write_1h_above")
    cols: dict[str, list] = {k: [] for k in ("model", *names, "fast_milli", "source")}
    for m in models:
        r = book.claude_code_rates(m) if m != "<synthetic>" else None
        if r is None:
            continue
        cols["model"].append(m)
        for k in names:
            v = getattr(r, k)
            cols[k].append(None if v is None else int((Decimal(v) * _PICO).to_integral_value()))
        cols["fast_milli"].append(int((Decimal(r.fast_multiplier) * 1000).to_integral_value()))
        cols["source"].append(r.source)
    return {k: ("VARCHAR" if k in ("model", "source") else "BIGINT", v) for k, v in cols.items()}


def _sql_list(paths: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


