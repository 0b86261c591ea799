"""``llmlab budgets set|list|delete``: USD budgets on a key, a project or a client."""

from __future__ import annotations

import json
import math

from .common import add_home, store_of


def register(sub) -> None:
    p = sub.add_parser("budgets", help="set, list and delete budgets (alerts, hard limits)",
                       description="A budget limits the proxy's spend of a key, a project or a "
                                   "client per period (UTC). Alerts fire at its thresholds; "
                                   "--hard refuses calls once it is spent.")
    bsub = p.add_subparsers(dest="budgets_command", metavar="ACTION", required=True)

    s = bsub.add_parser("set", help="create or update a budget")
    add_home(s)
    who = s.add_mutually_exclusive_group(required=True)
    who.add_argument("--key", metavar="KEY_ID", help="a virtual key's id")
    who.add_argument("--project", help="a project")
    who.add_argument("--client", help="a client")
    s.add_argument("--limit", type=float, required=True, metavar="USD", help="the limit in USD")
    s.add_argument("--period", default="month",
                   help="day, week, month (default) or a length such as 3600, 12h, 7d")
    s.add_argument("--hard", action="store_true",
                   help="refuse calls (429 insufficient_quota) once the limit is spent")
    s.add_argument("--thresholds", metavar="LIST",
                   help="alert thresholds as fractions, e.g. 0.5,0.8,1 (default: the server's "
                        "LLMLabApp.budget_thresholds, 0.8,1)")
    s.set_defaults(func=set_)

    ls = bsub.add_parser("list", help="budgets with spend, burn rate and projection")
    add_home(ls)
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=list_)

    d = bsub.add_parser("delete", help="delete a budget")
    add_home(d)
    d.add_argument("budget_id", help="as `llmlab budgets list` shows it, e.g. project:atlas:month")
    d.set_defaults(func=delete)


def _lab(args):
    from ..query import Lab

    return Lab(store_of(args))


def set_(args) -> int:
    scope, target = next((s, getattr(args, s)) for s in ("key", "project", "client")
                         if getattr(args, s) is not None)
    b = _lab(args).set_budget(scope, target, args.limit, args.period, hard=args.hard,
                              thresholds=args.thresholds)
    print(f"budget {b.budget_id}: ${b.limit_usd:,.2f} per {b.period_name}"
          f"{' (hard limit)' if b.hard else ''}")
    return 0


def _plain(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if hasattr(v, "isoformat"):
        return None if str(v) == "NaT" else v.isoformat()
    return v


def list_(args) -> int:
    df = _lab(args).budgets()
    rows = [{k: _plain(v) for k, v in r.items()} for r in df.to_dict("records")]
    if args.json:
        print(json.dumps(rows, default=str))
        return 0
    if not rows:
        print("no budgets")
        return 0
    for r in rows:
        print(f"{r['budget_id']}: ${r['spent_usd']:,.4f} of ${r['limit_usd']:,.2f} "
              f"({r['used_pct']:.0%}){' hard' if r['hard'] else ''}; resets {r['period_end']}; "
              f"burn ${(r['burn_rate_usd_per_hour'] or 0):,.4f}/h, projected "
              f"${(r['projected_usd'] or 0):,.2f}"
              f"{'; exhausted by ' + r['exhausts_at'] if r['exhausts_at'] else ''}")
    return 0


def delete(args) -> int:
    _lab(args).delete_budget(args.budget_id)
    print(f"deleted budget {args.budget_id}")
    return 0
