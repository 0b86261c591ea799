"""A consistent copy of usage.duckdb while servers, kernels and the CLI keep using it.

Copying the file with ``cp`` can catch a flush half-written (and misses a ``.wal``). Instead the
copy is made by DuckDB itself inside one read lease: ``COPY FROM DATABASE`` writes every table,
constraints included, into a new file from one transaction's snapshot. Writers wait at the gate
meanwhile, and the proxy keeps serving (records wait in the journal, as for any reader).
The copy goes to a temporary name first and is renamed only when it checks out, so a backup file
is either complete or absent.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ..errors import ConfigError, StoreError
from .lease import _DUCKDB_CONFIG, _sql_text

BACKUP_ALIAS = "llmlab_backup"


@dataclass(frozen=True)
class BackupResult:
    path: Path
    requests: int           # rows of ``requests`` in the copy
    migrations: list[str]   # the schema version of the copy
    waiting_segments: int   # journal segments not in the copy yet (they are in the next one)


def backup(store, out: str | os.PathLike, *, overwrite: bool = False, flush: bool = True) -> BackupResult:
    """Copy ``store``'s database to ``out`` (a new ``.duckdb`` file) under one read lease.

    ``flush`` first ingests what waits in the journal (sealed segments, and those of dead
    processes), so the copy is as recent as it can be without stopping the server.
    """
    out = Path(out).expanduser().resolve()
    if out == Path(store.db_path).resolve():
        raise ConfigError(f"{out} is the store itself; choose another file for the backup")
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} already exists (pass overwrite=True / --force to replace it)")
    if not out.parent.is_dir():
        raise ConfigError(f"{out.parent} is not a folder")
    if not Path(store.db_path).exists():
        raise StoreError(f"{store.db_path} does not exist: nothing to back up")
    if flush:
        store.flush()
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    try:
        with store.read() as con:
            source = con.execute("SELECT current_database()").fetchone()[0]
            con.execute(f"ATTACH {_sql_text(str(tmp))} AS {BACKUP_ALIAS}")
            try:
                con.execute(f"COPY FROM DATABASE {source} TO {BACKUP_ALIAS}")
                expected = con.execute("SELECT count(*) FROM requests").fetchone()[0]
            finally:
                con.execute(f"DETACH DATABASE IF EXISTS {BACKUP_ALIAS}")
        result = verify(tmp, expected_requests=expected)
        os.replace(tmp, out)
    except duckdb.Error as exc:
        raise StoreError(f"could not back up {store.db_path} to {out}: {exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return BackupResult(out, result.requests, result.migrations, store.backlog().segments)


def verify(path: str | os.PathLike, *, expected_requests: int | None = None) -> BackupResult:
    """Open a backup read-only and check it is a whole llmlab store."""
    con = duckdb.connect(str(path), read_only=True, config=dict(_DUCKDB_CONFIG))
    try:
        migrations = [r[0] for r in con.execute(
            "SELECT name FROM _llmlab_migrations ORDER BY name").fetchall()]
        requests = con.execute("SELECT count(*) FROM requests").fetchone()[0]
    except duckdb.Error as exc:
        raise StoreError(f"{path} is not an llmlab store: {exc}") from exc
    finally:
        con.close()
    if expected_requests is not None and requests != expected_requests:
        raise StoreError(f"the backup {path} holds {requests} calls, the store {expected_requests}")
    return BackupResult(Path(path), requests, migrations, 0)
