"""Shared fixtures. Every test gets its own llmlab home and Jupyter dirs (never the user's)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def llmlab_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "llmlab-home"
    monkeypatch.setenv("LLMLAB_HOME", str(home))
    return home


@pytest.fixture
def store(llmlab_home):
    from llmlab.store import Store

    return Store(llmlab_home)


@pytest.fixture
def python() -> str:
    return sys.executable
