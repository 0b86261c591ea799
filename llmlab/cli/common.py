"""Options shared by several commands."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when used: it loads DuckDB, which some commands never need
    from ..store import Store

FILTER_HELP = {
    "since": "first day (YYYY-MM-DD, inclusive) or ISO datetime",
    "until": "last day (YYYY-MM-DD, inclusive) or ISO datetime (exclusive)",
    "project": "only this project (repeatable)",
    "client": "only this client (repeatable)",
    "model": "only this model (repeatable)",
    "provider": "only this provider (repeatable)",
    "source": "only this source: proxy, claude-code, ... (repeatable)",
    "timezone": "IANA timezone for day/week/month boundaries (default UTC)",
}


def add_home(p: argparse.ArgumentParser) -> None:
    p.add_argument("--home", metavar="DIR",
                   help="llmlab home folder or .duckdb file (default: $LLMLAB_HOME, "
                        "else <jupyter data dir>/llmlab)")


def add_filters(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("filters")
    g.add_argument("--since", help=FILTER_HELP["since"])
    g.add_argument("--until", help=FILTER_HELP["until"])
    for name in ("project", "client", "model", "provider", "source"):
        g.add_argument(f"--{name}", action="append", metavar=name.upper(), help=FILTER_HELP[name])
    g.add_argument("--timezone", "--tz", default=None, help=FILTER_HELP["timezone"])


def filters_of(args) -> dict:
    out = {"since": args.since, "until": args.until, "timezone": args.timezone}
    for name in ("project", "client", "model", "provider", "source"):
        v = getattr(args, name, None)
        if v:
            out[name] = v
    return out


def store_of(args) -> Store:
    from ..store import Store

    store = Store(args.home)
    args._store = store
    return store
