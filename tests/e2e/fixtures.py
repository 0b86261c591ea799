"""Fixtures several e2e modules share; import the ones a module uses (``from fixtures import
upstream``). A module-level ``UPSTREAM_API_KEY`` makes the upstream demand that key."""

from __future__ import annotations

import pytest

from upstream import Upstream


@pytest.fixture(scope="module")
def upstream(request):
    """A local OpenAI-compatible upstream on loopback, one per test module."""
    up = Upstream(api_key=getattr(request.module, "UPSTREAM_API_KEY", None)).start()
    yield up
    up.stop()
