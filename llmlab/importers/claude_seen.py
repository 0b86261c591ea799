"""How far the store has read each log file, mirrored in a small JSON file beside the store, so
that an import with nothing new to read needs neither DuckDB nor the store file.

``_llmlab_log_files`` in usage.duckdb is the truth (path, size, mtime, read position). Each import
that reads it writes ``<home>/cache/claude-code-files.json``: every file's (size, mtime) as the
table has them, and the identity of usage.duckdb and its WAL (inode, size, mtime) taken *inside*
the same read lease, when no process can write the file. The mirror is used only while the store
file still has that identity: any later write (an import, a flush, a deleted row) changes it, and
the import reads the table again. When it is current and every log file still has the size and
mtime it lists, every file is unchanged: that is the answer the table would give.

Stale or missing mirrors only cost the DuckDB path; a mirror can never claim more than the table
held when it was written.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from .claude_paths import LogFile

VERSION = 1
CACHE_NAME = "claude-code-files.json"


def store_stamp(db_path: Path) -> list:
    """Identity of the store file and its WAL: (inode, size, mtime_ns), None where absent."""
    out: list = []
    for p in (db_path, db_path.with_name(db_path.name + ".wal")):
        try:
            st = os.stat(p)
        except OSError:
            out.append(None)
            continue
        out.append([st.st_ino, st.st_size, st.st_mtime_ns])
    return out


def cache_file(home: Path) -> Path:
    return home / "cache" / CACHE_NAME


def all_unchanged(db_path: Path, home: Path, files: list[LogFile]) -> bool:
    """True if the mirror is current and lists every one of ``files`` with its size and mtime."""
    try:
        data = json.loads(cache_file(home).read_text())
    except (OSError, ValueError):
        return False
    if (not isinstance(data, dict) or data.get("v") != VERSION
            or data.get("db") != str(db_path) or data.get("stamp") != store_stamp(db_path)):
        return False
    seen = data.get("files") or {}
    for f in files:
        s = seen.get(f.path)
        if s is None or s[0] != f.size or s[1] != f.mtime_ns:
            return False
    return True


def save(db_path: Path, home: Path, stamp: list, files: dict[str, tuple[int, int]]) -> None:
    """Write the mirror: ``files`` maps path -> (size, mtime_ns) as the table has them when the
    store had identity ``stamp``. Best effort: a read-only home just keeps the DuckDB path."""
    folder = cache_file(home).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"{CACHE_NAME}.{os.getpid()}-{threading.get_ident()}.tmp"
        tmp.write_text(json.dumps({"v": VERSION, "db": str(db_path), "stamp": stamp,
                                   "files": files}, separators=(",", ":")))
        os.replace(tmp, cache_file(home))
    except OSError:
        pass
