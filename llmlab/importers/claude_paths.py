"""Where Claude Code keeps its session logs, and what a log file's path says about it.

Claude Code writes one JSONL file per session under ``<config dir>/projects/<project>/``, and
a subagent's log under ``<project>/<session>/subagents/``. The config dirs are those named in
``CLAUDE_CONFIG_DIR`` (comma-separated), otherwise ``$XDG_CONFIG_HOME/claude`` (default
``~/.config/claude``) and ``~/.claude`` -- the same search ccusage does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError


@dataclass(frozen=True)
class LogFile:
    """One ``*.jsonl`` log file with what its path tells: project and session."""

    path: str
    size: int
    mtime_ns: int
    project: str        # the folder under projects/
    session_id: str     # the session the file belongs to (a subagent's parent session)
    project_path: str   # the folders between projects/ and the session


def config_dirs(paths: list[str | os.PathLike] | None = None) -> list[Path]:
    """Claude config folders (each holding ``projects/``), explicit ``paths`` first."""
    if paths:
        out = _existing([str(p) for p in paths])
        if not out:
            raise ConfigError(
                "no Claude logs found in " + ", ".join(str(p) for p in paths)
                + ": give a Claude config folder holding projects/, or a projects/ folder")
        return out
    env = os.environ.get("CLAUDE_CONFIG_DIR")
    if env is not None and env.strip():
        out = _existing([p for p in env.split(",")])
        if not out:
            raise ConfigError(
                f"CLAUDE_CONFIG_DIR={env!r} names no folder holding projects/ (each entry must be "
                "a Claude config folder holding projects/, or the projects/ folder itself)")
        return out
    home = Path.home()
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    return _existing([str(xdg / "claude"), str(home / ".claude")])


def _existing(raw: list[str]) -> list[Path]:
    out: list[Path] = []
    for entry in raw:
        entry = entry.strip()
        if not entry:
            continue
        # Resolved, so a folder reached through a symlink is still the same files to the store.
        p = Path(entry).expanduser().resolve()
        if p.name == "projects" and p.is_dir():
            p = p.parent
        if (p / "projects").is_dir() and p not in out:
            out.append(p)
    return out


def log_files(dirs: list[Path]) -> list[LogFile]:
    """Every ``projects/**/*.jsonl`` under the config folders, in path order (ccusage's order)."""
    found: list[LogFile] = []
    for d in dirs:
        root = str(d / "projects")
        for path, st in _walk(root):
            rel = path[len(root) + 1:].split(os.sep)  # _walk yields paths under root
            session, project_path = session_parts(rel)
            project = rel[0] if rel[0].strip() else "unknown"
            found.append(LogFile(path, st.st_size, st.st_mtime_ns, project, session, project_path))
    found.sort(key=lambda f: f.path)
    return found


def _walk(folder: str):
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for e in entries:
        try:
            if e.is_dir(follow_symlinks=False):
                yield from _walk(e.path)
            elif e.name.endswith(".jsonl") and e.is_file():
                yield e.path, e.stat()
        except OSError:
            continue  # vanished or unreadable: skipped this time, picked up when readable


def session_parts(rel: list[str]) -> tuple[str, str]:
    """``(session_id, project_path)`` of a log file from its path parts under projects/."""
    stem = rel[-1][: -len(".jsonl")] if rel and rel[-1].endswith(".jsonl") else ""
    if len(rel) == 2 and stem:
        return stem, rel[0]
    if len(rel) >= 4 and rel[-2] == "subagents":
        return rel[-3], os.sep.join(rel[:-3]) or "Unknown Project"
    session = rel[max(len(rel) - 2, 0)] if rel else "unknown"
    return session, os.sep.join(rel[:-2]) if len(rel) > 2 else "Unknown Project"
