"""The ``llmlab`` command: helpful --help everywhere, one-line errors with exit code 2."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from llmlab.cli import COMMAND_MODULES, build_parser, main


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("llmlab")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from llmlab.cli import main; sys.exit(main())"]


def run(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(_cli() + list(args), capture_output=True, text=True, timeout=120, **kw)


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


@pytest.mark.parametrize("module", COMMAND_MODULES)
def test_every_command_module_registers_a_command(module):
    import importlib

    sub = argparse.ArgumentParser().add_subparsers()
    importlib.import_module(f"llmlab.cli.{module}").register(sub)
    assert sub.choices, f"llmlab.cli.{module}.register() added no command"
    assert set(sub.choices) <= set(_subcommands())


def test_top_level_help_and_version():
    proc = run("--help")
    assert proc.returncode == 0
    assert proc.stdout.startswith("usage: llmlab")
    for name in _subcommands():
        assert name in proc.stdout
    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("llmlab ")


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_every_command_has_help_that_helps(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: llmlab {command}")
    parser = _subcommands()[command]
    assert parser.description, f"{command} has no description"
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            assert action.help and action.help.strip(), f"{command} {action.option_strings} has no help"
            assert action.option_strings[0] in out


@pytest.mark.parametrize("argv,message", [
    (["export", "--out", "usage.txt"], "unknown export format 'txt'"),
    (["export", "--out", "x.csv", "--since", "2026-13-01"], "not a valid date"),
    (["export", "--out", "x.csv", "--since", "2026-11-02", "--until", "2026-11-01"], "after until"),
    (["export", "--out", "x.csv", "--timezone", "Mars/Base"], "unknown timezone"),
    (["demo", "--days", "0"], "--days must be at least 1"),
])
def test_deliberate_errors_print_one_line_and_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("llmlab: error: ") and message in err[0]


@pytest.mark.parametrize("argv", [
    ["no-such-command"],
    ["export"],                                   # --out is required
    ["export", "--out", "x.csv", "--format", "xml"],
    ["demo", "--end", "last tuesday"],
    ["demo", "--days", "many"],
])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "usage: llmlab" in capsys.readouterr().err


def test_demo_export_flush_through_the_real_command(tmp_path):
    home = tmp_path / "home"
    first = run("demo", "--home", str(home), "--days", "5", "--end", "2026-10-30", "--seed", "2", "-q")
    assert first.returncode == 0, first.stderr
    assert "already present" in first.stdout and str(home / "usage.duckdb") in first.stdout
    again = run("demo", "--home", str(home), "--days", "5", "--end", "2026-10-30", "--seed", "2", "-q")
    assert again.returncode == 0 and ", 0 new," in again.stdout
    out = tmp_path / "atlas.parquet"
    exported = run("export", "--home", str(home), "--out", str(out), "--project", "atlas",
                   "--project", "research", "--since", "2026-10-27")
    assert exported.returncode == 0, exported.stderr
    n = int(exported.stdout.split()[1])
    table = pq.read_table(out).to_pandas()
    assert len(table) == n > 0
    assert set(table.project) <= {"atlas", "research"}
    assert table.started_at.min() >= __import__("pandas").Timestamp("2026-10-27", tz="UTC")
    flushed = run("flush", "--home", str(home))
    assert flushed.returncode == 0 and flushed.stdout.startswith("flushed 0 segments")


def test_a_deliberate_error_from_the_real_command(tmp_path):
    proc = run("export", "--home", str(tmp_path / "h"), "--out", str(tmp_path / "x.json"))
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("llmlab: error: unknown export format 'json'; choose csv or parquet")
