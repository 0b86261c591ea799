"""The command reference in docs/operators/cli.md, generated from the `llmlab` argparse parser.

    .venv/bin/python scripts/cli_reference.py           # print the reference
    .venv/bin/python scripts/cli_reference.py --write   # update docs/operators/cli.md in place
    .venv/bin/python scripts/cli_reference.py --check   # exit 1 if the page is out of date

Only the part between the two marker comments is generated; the prose around it is written by
hand. tests/test_docs.py fails when the generated part is stale, so a new command or option
cannot land undocumented. The output is built from the parser's actions, not from
``format_help()``, so it does not change with the terminal width or the Python version.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "operators" / "cli.md"
BEGIN = "<!-- BEGIN GENERATED: scripts/cli_reference.py --write -->"
END = "<!-- END GENERATED -->"
_DEFAULT_GROUPS = {"options", "optional arguments", "positional arguments"}


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser, str]]:
    """``(name, parser, one-line help)`` of ``parser``'s direct sub-commands."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            return [(name, sub, helps.get(name, "")) for name, sub in action.choices.items()]
    return []


def commands(parser: argparse.ArgumentParser | None = None, prefix: str = "llmlab"):
    """``(name, parser, one-line help)`` of every command and sub-command, depth first."""
    if parser is None:
        from llmlab.cli import build_parser

        parser = build_parser()
    for name, sub, summary in _subcommands(parser):
        full = f"{prefix} {name}"
        yield full, sub, summary
        yield from commands(sub, full)


def _metavar(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ""
    if action.metavar is not None:
        mv = action.metavar if isinstance(action.metavar, str) else " ".join(action.metavar)
    elif action.choices is not None:
        mv = "{" + ",".join(map(str, action.choices)) + "}"
    else:
        mv = action.dest.upper()
    if action.nargs in ("*", "+"):
        mv += " ..."
    return mv


def _expand(action: argparse.Action, prog: str) -> str:
    text = action.help or ""
    if "%" in text:
        params = {**vars(action), "prog": prog}
        if params.get("choices") is not None:
            params["choices"] = ", ".join(map(str, params["choices"]))
        text = text % params
    return _md(text)


def _md(text: str) -> str:
    """One line of Markdown table text: "<jupyter data dir>" must not read as an HTML tag."""
    return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _option_cell(action: argparse.Action) -> str:
    if not action.option_strings:     # argparse shows positionals by metavar, choices or dest
        if action.metavar is None and action.choices is None:
            return f"`{action.dest}`"
        return f"`{_metavar(action)}`"
    mv = _metavar(action)
    names = ", ".join(f"`{o}`" for o in action.option_strings)
    return f"{names} `{mv}`" if mv else names


def _rows(parser: argparse.ArgumentParser, actions) -> list[str]:
    rows = []
    for a in actions:
        if a.help == argparse.SUPPRESS or isinstance(a, (argparse._HelpAction,
                                                          argparse._SubParsersAction)):
            continue
        extra = " (required)" if a.required and a.option_strings else ""
        rows.append(f"| {_option_cell(a)} | {_expand(a, parser.prog)}{extra} |")
    return rows


def _section(name: str, parser: argparse.ArgumentParser, summary: str) -> list[str]:
    depth = name.count(" ")
    out = [f"{'#' * (2 + depth)} `{name}`", ""]
    text = _md(parser.description or summary or "")
    if text:
        out += [text, ""]
    subs = _subcommands(parser)
    if subs:
        out += ["| command | what it does |", "|---|---|"]
        out += [f"| `{name} {s}` | {_md(what)} |" for s, _, what in subs]
        out.append("")
    for group in parser._action_groups:
        rows = _rows(parser, group._group_actions)
        if not rows:
            continue
        if group.title not in _DEFAULT_GROUPS:
            out += [f"*{group.title}*", ""]
        head = "argument" if group.title == "positional arguments" else "option"
        out += [f"| {head} | meaning |", "|---|---|", *rows, ""]
    if parser.epilog:
        out += ["```text", parser.epilog.strip("\n"), "```", ""]
    return out


def render() -> str:
    lines = [BEGIN, ""]
    for name, parser, summary in commands():
        lines += _section(name, parser, summary)
    lines.append(END)
    return "\n".join(lines) + "\n"


def current() -> str:
    text = DOC.read_text()
    start, stop = text.index(BEGIN), text.index(END) + len(END)
    return text[start:stop] + "\n"


def write() -> None:
    text = DOC.read_text()
    start, stop = text.index(BEGIN), text.index(END) + len(END)
    DOC.write_text(text[:start] + render().rstrip("\n") + text[stop:])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help=f"update {DOC.relative_to(ROOT)}")
    mode.add_argument("--check", action="store_true", help="exit 1 if the page is stale")
    args = ap.parse_args(argv)
    if args.write:
        write()
    elif args.check:
        if current() != render():
            print(f"{DOC.relative_to(ROOT)} is stale: run scripts/cli_reference.py --write",
                  file=sys.stderr)
            return 1
    else:
        sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
