"""Append-only, named schema migrations, recorded in ``_llmlab_migrations``.

Never edit a released migration: add ``m00N_<what>`` below and append it to ``MIGRATIONS``.
Each runs inside the write lease's transaction, so a crash leaves the schema as it was.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

import duckdb

from ..errors import MigrationError
from .schema import COLUMNS

Migration = Callable[[duckdb.DuckDBPyConnection], None]


def m001_initial(con: duckdb.DuckDBPyConnection) -> None:
    # The column list of schema v1 is frozen here on purpose: later columns arrive by migration.
    cols = ",\n  ".join(f"{name} {typ}" for name, typ in COLUMNS if name not in _ADDED_LATER)
    con.execute(
        f"CREATE TABLE requests (\n  {cols},\n  PRIMARY KEY (request_id)\n)"
    )
    con.execute(
        """CREATE TABLE _llmlab_flushes (
             flushed_at TIMESTAMPTZ NOT NULL,
             pid INTEGER,
             segments INTEGER,
             records BIGINT,
             inserted BIGINT,
             duplicates BIGINT,
             corrupt_lines BIGINT,
             oldest_record_at TIMESTAMPTZ
           )"""
    )


# Columns of COLUMNS introduced by a later migration: m001 must not create them.
_M002_COLUMNS = ("message_id", "provider_request_id", "log_session_id", "cwd", "git_branch",
                 "is_sidechain", "agent_version", "speed", "recorded_cost_usd",
                 "calculated_cost_usd", "log_file", "log_line")
_ADDED_LATER: set[str] = set(_M002_COLUMNS)


def m002_claude_code_import(con: duckdb.DuckDBPyConnection) -> None:
    """Agent-log provenance columns and the record of imported log files.

    ``_llmlab_log_files`` remembers how far each log file has been read (bytes and lines up to
    the last complete line) with its size and mtime, so a re-import reads only what is new.
    """
    types = dict(COLUMNS)
    for name in _M002_COLUMNS:  # frozen here: later columns arrive by later migrations
        con.execute(f"ALTER TABLE requests ADD COLUMN {name} {types[name]}")
    con.execute(
        """CREATE TABLE _llmlab_log_files (
             path VARCHAR PRIMARY KEY,
             source VARCHAR NOT NULL,
             size BIGINT,
             mtime_ns BIGINT,
             consumed_bytes BIGINT,
             consumed_lines BIGINT,
             tail_hash VARCHAR,
             entries BIGINT,
             dropped_lines BIGINT,
             imported_at TIMESTAMPTZ
           )"""
    )


def m003_rollup(con: duckdb.DuckDBPyConnection) -> None:
    """15-minute pre-aggregates the query helpers read (llmlab/store/rollup.py), filled from
    the rows already stored."""
    from . import rollup

    rollup.create(con)


def m004_keys_budgets_alerts(con: duckdb.DuckDBPyConnection) -> None:
    """Virtual keys (only a hash of the secret), budgets, and the alerts they fired
    (llmlab/policy/, docs/developers/budgets.md)."""
    con.execute(
        """CREATE TABLE api_keys (
             key_id VARCHAR PRIMARY KEY,
             prefix VARCHAR NOT NULL,
             secret_hash VARCHAR NOT NULL,
             name VARCHAR,
             project VARCHAR NOT NULL,
             client VARCHAR,
             models VARCHAR[],
             rpm INTEGER,
             tpm BIGINT,
             expires_at TIMESTAMPTZ,
             created_at TIMESTAMPTZ NOT NULL,
             rotated_at TIMESTAMPTZ,
             revoked_at TIMESTAMPTZ
           )"""
    )
    con.execute(
        """CREATE TABLE budgets (
             budget_id VARCHAR PRIMARY KEY,
             scope VARCHAR NOT NULL,
             target VARCHAR NOT NULL,
             period VARCHAR NOT NULL,
             period_seconds BIGINT,
             limit_usd DECIMAL(18,6) NOT NULL,
             hard BOOLEAN NOT NULL,
             thresholds DOUBLE[],
             created_at TIMESTAMPTZ NOT NULL,
             updated_at TIMESTAMPTZ NOT NULL
           )"""
    )
    con.execute(
        """CREATE TABLE budget_alerts (
             alert_id VARCHAR PRIMARY KEY,
             budget_id VARCHAR NOT NULL,
             scope VARCHAR NOT NULL,
             target VARCHAR NOT NULL,
             threshold DOUBLE NOT NULL,
             spent_usd DOUBLE,
             limit_usd DOUBLE,
             period VARCHAR,
             period_start TIMESTAMPTZ NOT NULL,
             period_end TIMESTAMPTZ NOT NULL,
             hard BOOLEAN,
             fired_at TIMESTAMPTZ NOT NULL,
             message VARCHAR
           )"""
    )


def m005_requests_without_primary_key(con: duckdb.DuckDBPyConnection) -> None:
    """``requests`` without its primary key (an ART index on ``request_id``).

    Every writer keeps ids unique itself, under the write lease that serialises writers: the
    flusher skips ids already stored (flush.py ``_UNSEEN``), the importers insert only new
    keys. The key cost a Claude Code import of 1 GB 9% of its time (7 of 8 alternating runs
    faster without it) and its store 61 MiB instead of 23; what the anti-join costs instead is
    in docs/developers/storage.md ("Ingest"). DuckDB cannot drop a constraint, so the table is
    copied, in the migration's transaction (rows, order and column types as they were).
    """
    con.execute("CREATE TABLE _llmlab_requests_copy AS SELECT * FROM requests")
    con.execute("DROP TABLE requests")
    con.execute("ALTER TABLE _llmlab_requests_copy RENAME TO requests")


MIGRATIONS: list[tuple[str, Migration]] = [
    ("m001_initial", m001_initial),
    ("m002_claude_code_import", m002_claude_code_import),
    ("m003_rollup", m003_rollup),
    ("m004_keys_budgets_alerts", m004_keys_budgets_alerts),
    ("m005_requests_without_primary_key", m005_requests_without_primary_key),
]


def applied(con: duckdb.DuckDBPyConnection) -> list[str]:
    con.execute(
        "CREATE TABLE IF NOT EXISTS _llmlab_migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMPTZ)"
    )
    return [r[0] for r in con.execute("SELECT name FROM _llmlab_migrations ORDER BY name").fetchall()]


def pending(con: duckdb.DuckDBPyConnection) -> list[str]:
    done = set(applied(con))
    return [name for name, _ in MIGRATIONS if name not in done]


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply every pending migration in order; return the names applied."""
    done = set(applied(con))
    known = {name for name, _ in MIGRATIONS}
    unknown = done - known
    if unknown:
        raise MigrationError(
            f"the store was written by a newer llmlab (migrations {sorted(unknown)} are unknown "
            "to this version); upgrade llmlab"
        )
    ran = []
    for name, fn in MIGRATIONS:
        if name in done:
            continue
        try:
            con.execute("BEGIN TRANSACTION")
            fn(con)
            con.execute(
                "INSERT INTO _llmlab_migrations VALUES (?, ?)", [name, datetime.now(timezone.utc)]
            )
            con.execute("COMMIT")
        except duckdb.Error as exc:
            con.execute("ROLLBACK")
            raise MigrationError(f"migration {name} failed: {exc}") from exc
        ran.append(name)
    return ran
