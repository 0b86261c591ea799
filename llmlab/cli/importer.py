"""``llmlab import claude-code``: bring Claude Code's session logs into the store."""

from __future__ import annotations

import sys

from .common import add_home


def register(sub) -> None:
    p = sub.add_parser(
        "import", help="import usage logged by other tools (Claude Code)",
        description="Import usage that other tools logged into the llmlab store, next to the "
                    "proxy's own records.")
    what = p.add_subparsers(dest="importer", metavar="SOURCE", required=True)
    cc = what.add_parser(
        "claude-code", help="Claude Code session logs (~/.claude/projects/**/*.jsonl)",
        description="Import Claude Code's session logs: one row per assistant message "
                    "(deduplicated the way ccusage does), source 'claude-code'. Only new files "
                    "and new lines are read, so running it again is cheap and counts nothing "
                    "twice. Without --path the logs are found where Claude Code writes them: "
                    "CLAUDE_CONFIG_DIR (comma-separated), else $XDG_CONFIG_HOME/claude "
                    "(~/.config/claude) and ~/.claude.",
        epilog="Then: llmlab report daily --source claude-code. Docs: docs/users/claude-code.md")
    add_home(cc)
    cc.add_argument("--path", action="append", metavar="DIR",
                    help="a Claude config folder holding projects/, or a projects/ folder "
                         "(repeatable)")
    cc.add_argument("--since", metavar="YYYY-MM-DD",
                    help="skip log files last written before this day (a later import without "
                         "--since picks them up)")
    cc.add_argument("--rescan", action="store_true",
                    help="read every file from the start again (nothing is counted twice)")
    cc.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    cc.add_argument("--verbose", "-v", action="store_true",
                    help="also print samples of dropped lines")
    cc.set_defaults(func=run_claude_code)


def run_claude_code(args) -> int:
    from ..importers import import_claude_code
    from ..paths import db_path_for

    # The home, not a Store: with nothing new to read the import needs no DuckDB at all, and
    # this command journals nothing the CLI would have to flush on exit.
    result = import_claude_code(args.home, args.path, since=args.since, rescan=args.rescan,
                                progress=not args.quiet and sys.stderr.isatty())
    db_path = db_path_for(args.home)
    if not result.files_seen and not args.path:
        print("claude-code: no Claude Code logs found (looked in CLAUDE_CONFIG_DIR, "
              "$XDG_CONFIG_HOME/claude and ~/.claude); give --path DIR")
        return 0
    print(f"claude-code: {result.summary()} -> {db_path}")
    if result.files_unchanged:
        print(f"  {result.files_unchanged} files unchanged since the last import")
    if args.verbose:
        for sample in result.dropped_samples:
            print(f"  dropped {sample}")
    return 0
