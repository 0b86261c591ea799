"""``llmlab report daily|weekly|monthly|session|blocks``: usage tables, or ccusage-shaped JSON."""

from __future__ import annotations

import json
import shutil
import sys

from .common import add_filters, add_home, filters_of, store_of

KINDS = ("daily", "weekly", "monthly", "session", "blocks")


def register(sub) -> None:
    p = sub.add_parser(
        "report", help="usage by day, week, month, session or 5-hour block (ccusage's reports)",
        description="Usage reports over everything in the store (proxied calls, imported "
                    "Claude Code logs, ...; pick with --source). --json prints ccusage's JSON "
                    "shape, so tools written for `ccusage --json` read it.",
        epilog="Example: llmlab report monthly --source claude-code --json. "
               "Docs: docs/users/claude-code.md")
    p.add_argument("kind", choices=KINDS, help="how to group usage")
    add_home(p)
    add_filters(p)
    p.add_argument("--json", action="store_true", help="print JSON in ccusage's shape")
    p.add_argument("--breakdown", "-b", action="store_true", help="a line per model under each row")
    p.add_argument("--mode", choices=("auto", "calculate", "display"), default="auto",
                   help="cost of imported logs: auto (the cost the log recorded, else priced "
                        "from tokens), calculate (always priced), display (recorded only)")
    p.add_argument("--order", choices=("asc", "desc"), default="asc", help="row order (default asc)")
    p.add_argument("--start-of-week", default="sunday",
                   choices=("sunday", "monday", "tuesday", "wednesday", "thursday", "friday",
                            "saturday"), help="first day of a week for 'weekly' (default sunday)")
    g = p.add_argument_group("session and blocks")
    g.add_argument("--id", dest="session_id", metavar="SESSION", help="session: only this session")
    g.add_argument("--active", action="store_true", help="blocks: only the active block")
    g.add_argument("--recent", action="store_true", help="blocks: the last 3 days and the active one")
    g.add_argument("--session-length", type=float, default=5.0, metavar="HOURS",
                   help="blocks: block length in hours (default 5)")
    p.set_defaults(func=run)


def build(store, args) -> dict:
    from .. import reports

    f = filters_of(args)
    if args.kind in ("daily", "weekly", "monthly"):
        return reports.period_report(store, args.kind, mode=args.mode, order=args.order,
                                     start_of_week=args.start_of_week, **f)
    if args.kind == "session":
        return reports.session_report(store, mode=args.mode, order=args.order,
                                      session_id=args.session_id, **f)
    return reports.blocks_report(store, mode=args.mode, order=args.order, active=args.active,
                                 recent=args.recent, session_hours=args.session_length, **f)


def run(args) -> int:
    data = build(store_of(args), args)
    if args.json:
        # Indented for a person at a terminal; compact (C-speed) when piped to a program.
        print(json.dumps(data, indent=2 if sys.stdout.isatty() else None))
        return 0
    if args.kind == "blocks":
        print(blocks_text(data["blocks"], detailed=args.active))
    else:
        print(usage_text(args.kind, data, breakdown=args.breakdown))
    return 0


# -- terminal tables ----------------------------------------------------------------------------
def _n(v) -> str:
    return f"{int(v):,}"


def _usd(v) -> str:
    return f"${v:,.2f}"


def table(headers: list[str], rows: list[list[str]], right: set[int]) -> str:
    """A plain box table; numbers right-aligned."""
    cells = [r for r in rows if r is not None]  # None: a separator line
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(cells):
        return "│ " + " │ ".join(c.rjust(w) if i in right else c.ljust(w)
                                   for i, (c, w) in enumerate(zip(cells, widths))) + " │"
    bar = "─┼─".join("─" * w for w in widths)
    out = ["┌─" + "─┬─".join("─" * w for w in widths) + "─┐", line(headers), "├─" + bar + "─┤"]
    for r in rows:
        out.append("├─" + bar + "─┤" if r is None else line(r))
    out.append("└─" + "─┴─".join("─" * w for w in widths) + "─┘")
    return "\n".join(out)


def _short(model: str) -> str:
    return model.removeprefix("claude-")


def _models(models: list[str], width: int = 48) -> str:
    """Short model names that fit a column: "a, b +3 more"."""
    names = [_short(m) for m in models]
    out = ""
    for i, n in enumerate(names):
        more = f" +{len(names) - i} more"
        if out and len(out) + 2 + len(n) + (len(more) if i < len(names) - 1 else 0) > width:
            return out + more
        out = f"{out}, {n}" if out else n
    return out or "-"


def usage_text(kind: str, data: dict, *, breakdown: bool = False) -> str:
    key = {"daily": "date", "weekly": "week", "monthly": "month", "session": "sessionId"}[kind]
    rows_key = "sessions" if kind == "session" else kind
    first = {"daily": "Date", "weekly": "Week of", "monthly": "Month", "session": "Session"}[kind]
    headers = [first, "Models", "Input", "Output", "Cache write", "Cache read", "Total tokens",
               "Cost (USD)"]
    if kind == "session":
        headers.insert(1, "Project")
        headers.append("Last activity")
    rows: list = []
    for r in data[rows_key]:
        label = r[key] if kind != "session" else r[key][:36]
        cells = [label, _models(r["modelsUsed"]),
                 _n(r["inputTokens"]), _n(r["outputTokens"]), _n(r["cacheCreationTokens"]),
                 _n(r["cacheReadTokens"]), _n(r["totalTokens"]), _usd(r["totalCost"])]
        if kind == "session":
            cells.insert(1, r["projectPath"][-30:])
            cells.append(r["lastActivity"][:16].replace("T", " "))
        rows.append(cells)
        if breakdown:
            for b in r["modelBreakdowns"]:
                sub = ["", "  " + _short(b["modelName"]), _n(b["inputTokens"]), _n(b["outputTokens"]),
                       _n(b["cacheCreationTokens"]), _n(b["cacheReadTokens"]),
                       _n(sum(b[k] for k in ("inputTokens", "outputTokens", "cacheCreationTokens",
                                             "cacheReadTokens"))), _usd(b["cost"])]
                if kind == "session":
                    sub.insert(1, "")
                    sub.append("")
                rows.append(sub)
    if not rows:
        return "No usage in this selection."
    t = data["totals"]
    total = ["Total", "", _n(t["inputTokens"]), _n(t["outputTokens"]), _n(t["cacheCreationTokens"]),
             _n(t["cacheReadTokens"]), _n(t["totalTokens"]), _usd(t["totalCost"])]
    if kind == "session":
        total.insert(1, "")
        total.append("")
    rows += [None, total]
    first_num = 3 if kind == "session" else 2
    right = set(range(first_num, first_num + 6))
    text = table(headers, rows, right)
    width = shutil.get_terminal_size((200, 20)).columns
    if max(len(x) for x in text.splitlines()) > width:
        text += "\n(wide table: widen the terminal or use --json)"
    return text


def blocks_text(blocks: list[dict], *, detailed: bool = False) -> str:
    if not blocks:
        return "No usage in this selection." if not detailed else "No active block."
    if detailed:
        return "\n\n".join(_active_text(b) for b in blocks)
    rows = []
    for b in blocks:
        start = b["startTime"][:16].replace("T", " ")
        if b["isGap"]:
            rows.append([start, "(gap)", "-", "-", "-", "-"])
            continue
        status = "ACTIVE" if b["isActive"] else ""
        rows.append([start, status, _models(b["models"]),
                     _n(b["entries"]), _n(b["totalTokens"]), _usd(b["costUSD"])])
    return table(["Block start (UTC)", "Status", "Models", "Messages", "Tokens", "Cost (USD)"],
                 rows, {3, 4, 5})


def _active_text(b: dict) -> str:
    lines = [f"Block started {b['startTime'][:16].replace('T', ' ')} UTC, ends "
             f"{b['endTime'][11:16]} UTC" + ("  (active)" if b["isActive"] else ""),
             f"  tokens {_n(b['totalTokens'])}  cost {_usd(b['costUSD'])}  messages {b['entries']}",
             f"  models {', '.join(b['models']) or '-'}"]
    if b["burnRate"]:
        r, p = b["burnRate"], b["projection"]
        lines.append(f"  burn rate {_n(r['tokensPerMinute'])} tokens/min, "
                     f"{_usd(r['costPerHour'])}/hour")
        lines.append(f"  projected by block end ({p['remainingMinutes']} min left): "
                     f"{_n(p['totalTokens'])} tokens, {_usd(p['totalCost'])}")
    return "\n".join(lines)
