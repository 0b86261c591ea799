"""``llmlab keys create|list|revoke|rotate``: virtual keys for the proxy (docs/users/budgets.md)."""

from __future__ import annotations

import json

from .common import add_home, store_of


def register(sub) -> None:
    p = sub.add_parser("keys", help="create, list, revoke and rotate virtual keys (sk-llmlab-...)",
                       description="Virtual keys authenticate calls to the proxy routes only and "
                                   "bill them to their project/client. A key is printed once; "
                                   "only its hash is stored. A running server applies changes "
                                   "within LLMLabApp.policy_reload_interval seconds.")
    ksub = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    c = ksub.add_parser("create", help="create a key and print it (once)")
    add_home(c)
    c.add_argument("--project", required=True, help="project the key's calls are billed to")
    c.add_argument("--client", help="client the key's calls are billed to")
    c.add_argument("--name", help="a label for lists (who or what uses the key)")
    c.add_argument("--budget", type=float, metavar="USD", help="also set a budget on this key")
    c.add_argument("--period", default="month",
                   help="period of --budget: day, week, month (default) or a length such as "
                        "3600, 12h, 7d")
    c.add_argument("--hard", action="store_true",
                   help="with --budget: refuse calls (429 insufficient_quota) once it is spent")
    c.add_argument("--thresholds", metavar="LIST",
                   help="with --budget: alert thresholds, e.g. 0.5,0.8,1 (default: the server's "
                        "LLMLabApp.budget_thresholds, 0.8,1)")
    c.add_argument("--rpm", type=int, metavar="N", help="at most N requests per minute")
    c.add_argument("--tpm", type=int, metavar="N", help="at most N tokens per minute")
    c.add_argument("--models", metavar="A,B", help="only these models (comma-separated)")
    c.add_argument("--expires", metavar="DATE",
                   help="YYYY-MM-DD (valid through that day, UTC) or an ISO datetime")
    c.add_argument("--json", action="store_true", help="print the key and its details as JSON")
    c.set_defaults(func=create)

    ls = ksub.add_parser("list", help="list keys (ids and prefixes, never secrets)")
    add_home(ls)
    ls.add_argument("--active", action="store_true", help="leave out revoked keys")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=list_)

    r = ksub.add_parser("revoke", help="revoke a key: its calls get 401 from then on")
    add_home(r)
    r.add_argument("key_id", help="the key's id (12 hex digits, see `llmlab keys list`)")
    r.set_defaults(func=revoke)

    ro = ksub.add_parser("rotate", help="new secret for a key (same id, budgets and limits); "
                                        "prints it once, the old secret stops working")
    add_home(ro)
    ro.add_argument("key_id", help="the key's id")
    ro.add_argument("--json", action="store_true", help="print JSON")
    ro.set_defaults(func=rotate)


def _keys(args):
    from ..policy.report import Keys

    return Keys(store_of(args))


def _print_created(created, as_json: bool, verb: str) -> None:
    if as_json:
        print(json.dumps({"key": created.key, **created.info.public()}))
        return
    print(created.key)
    info = created.info
    print(f"# {verb} key {info.key_id} for project {info.project}"
          f"{f', client {info.client}' if info.client else ''}. Copy it now: it is not shown again.")


def create(args) -> int:
    created = _keys(args).create(
        args.project, client=args.client, name=args.name, budget_usd=args.budget,
        period=args.period, hard=args.hard, thresholds=args.thresholds, rpm=args.rpm,
        tpm=args.tpm, models=args.models, expires=args.expires)
    _print_created(created, args.json, "created")
    return 0


def list_(args) -> int:
    from ..policy import registry

    keys = registry.list_keys(store_of(args), include_revoked=not args.active)
    rows = [k.public() for k in keys]
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print("no keys")
        return 0
    cols = ["key_id", "prefix", "status", "project", "client", "name", "rpm", "tpm", "expires_at"]
    table = [[("" if r[c] is None else str(r[c])) for c in cols] for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in table)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip())
    for t in table:
        print("  ".join(v.ljust(w) for v, w in zip(t, widths)).rstrip())
    return 0


def revoke(args) -> int:
    key = _keys(args).revoke(args.key_id)
    print(f"revoked key {key.key_id} ({key.prefix}...)")
    return 0


def rotate(args) -> int:
    _print_created(_keys(args).rotate(args.key_id), args.json, "rotated")
    return 0
