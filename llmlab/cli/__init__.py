"""The ``llmlab`` command. One module per command group; each has ``register(subparsers)``.

Every command takes ``--home`` (default ``$LLMLAB_HOME``, else ``<jupyter data dir>/llmlab``).
Errors llmlab raises on purpose print one line and exit 2; records a command journaled are
flushed into the store before it exits.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ..errors import LLMLabError

# Command modules, in --help order. Add a module here to add a command.
COMMAND_MODULES = ["demo", "export", "flush", "invoice", "importer", "report", "statusline",
                   "keys", "budgets", "backup"]


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="llmlab",
        description="LLM usage and cost: record it through a Jupyter proxy, query it, bill it.",
        epilog="Run 'llmlab COMMAND --help' for a command's options. Docs: docs/users/.",
    )
    parser.add_argument("--version", action="version", version=f"llmlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f".{name}", __name__).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="llmlab: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["statusline"]:
        # Claude Code runs this after every message: do not import the other commands.
        from . import statusline

        return statusline.main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LLMLabError as exc:
        print(f"llmlab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("llmlab: interrupted", file=sys.stderr)
        return 130
    finally:
        _flush_own_journal(args)


def _flush_own_journal(args) -> None:
    """The CLI flushes on exit so nothing it journaled waits for a server (DESIGN §3)."""
    store = getattr(args, "_store", None)
    if store is not None and store.journal_dir.exists():
        from ..store import _writers

        if any(k.startswith(f"{__import__('os').getpid()}:") for k in _writers):
            try:
                store.flush()
            except LLMLabError as exc:
                print(f"llmlab: records wait in the journal: {exc}", file=sys.stderr)
