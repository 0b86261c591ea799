"""Importers: usage recorded by other tools, brought into the llmlab store.

``import_claude_code(store, paths=None, progress=False)`` imports Claude Code's session logs
(source ``claude-code``); see docs/users/claude-code.md.

Attributes load on first use, so the status line can use ``claude_lines`` without DuckDB.
"""

from __future__ import annotations

__all__ = ["import_claude_code", "ImportResult"]


def __getattr__(name: str):
    if name in __all__:
        from . import claude_code

        return getattr(claude_code, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
