"""``llmlab flush``: ingest what waits in the journal now."""

from __future__ import annotations

from .common import add_home, store_of


def register(sub) -> None:
    p = sub.add_parser("flush", help="ingest journaled records into usage.duckdb now",
                       description="Ingest every sealed journal segment (and those of dead "
                                   "processes) into the store. The server does this on its own.")
    add_home(p)
    p.add_argument("--rebuild-rollup", action="store_true",
                   help="also recompute the 15-minute pre-aggregates the query helpers read, "
                        "from the requests table (needed only after editing it by hand)")
    p.set_defaults(func=run)


def run(args) -> int:
    store = store_of(args)
    r = store.flush()
    print(f"flushed {r.segments} segments: {r.inserted} new records, {r.duplicates} already "
          f"present, {r.corrupt_lines} corrupt lines skipped")
    if args.rebuild_rollup:
        from ..store import rollup

        with store.write() as con:
            con.execute("BEGIN TRANSACTION")
            rollup.rebuild(con)
            con.execute("COMMIT")
        print("rebuilt the rollup")
    return 0
