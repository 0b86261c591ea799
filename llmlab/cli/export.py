"""``llmlab export``: the selected calls as CSV or Parquet."""

from __future__ import annotations

from pathlib import Path

from .common import add_filters, add_home, filters_of, store_of


def register(sub) -> None:
    p = sub.add_parser("export", help="export calls as CSV or Parquet",
                       description="Write the selected calls (one row per call, every column but "
                                   "the stored bodies unless --bodies) to a file.")
    add_home(p)
    p.add_argument("--format", choices=["csv", "parquet"], default=None,
                   help="file format (default: from the --out suffix)")
    p.add_argument("--out", required=True, type=Path, help="output file")
    p.add_argument("--bodies", action="store_true", help="include stored request/response bodies")
    add_filters(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..export import export

    fmt = args.format or args.out.suffix.lstrip(".").lower()
    n = export(store_of(args), args.out, fmt=fmt, bodies=args.bodies, **filters_of(args))
    print(f"exported {n} calls to {args.out}")
    return 0
