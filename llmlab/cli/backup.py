"""``llmlab backup``: a consistent copy of usage.duckdb, safe while the server runs."""

from __future__ import annotations

from datetime import datetime, timezone

from .common import add_home, store_of


def register(sub) -> None:
    p = sub.add_parser(
        "backup", help="copy usage.duckdb consistently, even while the server runs",
        description="Flush the journal, then copy the whole store (every table) into a new "
                    "DuckDB file under one read lease, and check the copy. Restore by putting "
                    "the file back as usage.duckdb while no server runs. Docs: "
                    "docs/operators/backups.md")
    add_home(p)
    p.add_argument("--out", metavar="FILE",
                   help="the backup file (default ./llmlab-backup-<UTC time>.duckdb)")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    p.add_argument("--no-flush", action="store_true",
                   help="do not ingest the journal first (the copy then lacks what waits there)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..store.backup import backup

    out = args.out or f"llmlab-backup-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.duckdb"
    r = backup(store_of(args), out, overwrite=args.force, flush=not args.no_flush)
    waiting = (f"; {r.waiting_segments} journal segments still wait (in the next backup)"
               if r.waiting_segments else "")
    print(f"backup: {r.requests} calls, schema {r.migrations[-1] if r.migrations else '?'} "
          f"-> {r.path}{waiting}")
    return 0
