"""Where llmlab keeps its files.

``$LLMLAB_HOME`` if set, else ``<jupyter data dir>/llmlab/``. Every entry point can override it
(server trait ``LLMLabApp.home``, CLI ``--home``, ``llmlab.open(path)``).
"""

from __future__ import annotations

import os
from pathlib import Path

DB_FILENAME = "usage.duckdb"
JOURNAL_DIRNAME = "journal"


def default_home() -> Path:
    env = os.environ.get("LLMLAB_HOME")
    if env:
        return Path(env).expanduser()
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "llmlab"


def resolve_home(path: str | os.PathLike | None = None) -> Path:
    """A home folder from an explicit path (a folder, or a ``.duckdb`` file inside one)."""
    if path is None:
        return default_home()
    p = Path(path).expanduser()
    if p.suffix == ".duckdb":
        return p.parent
    return p


def db_path_for(path: str | os.PathLike | None = None) -> Path:
    p = Path(path).expanduser() if path is not None else None
    if p is not None and p.suffix == ".duckdb":
        return p
    return resolve_home(path) / DB_FILENAME
