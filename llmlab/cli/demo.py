"""``llmlab demo``: seed realistic demo usage."""

from __future__ import annotations

from datetime import date

from .common import add_home, store_of


def register(sub) -> None:
    p = sub.add_parser(
        "demo", help="seed realistic demo usage (about 90 days, several projects and clients)",
        description="Seed realistic demo usage through the journal and flusher. Deterministic for "
                    "a --seed and --end date; running it again adds nothing.")
    add_home(p)
    p.add_argument("--days", type=int, default=90, help="how many days of history (default 90)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument("--end", type=date.fromisoformat, default=None,
                   help="last day of the demo, YYYY-MM-DD (default today, UTC)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..demo import seed_demo
    from ..errors import ConfigError

    if args.days < 1:
        raise ConfigError("--days must be at least 1")
    store = store_of(args)
    out = seed_demo(store, days=args.days, seed=args.seed, end=args.end, progress=not args.quiet)
    print(f"demo: {out['generated']} calls generated, {out['inserted']} new, "
          f"{out['already_present']} already present -> {store.db_path}")
    return 0
