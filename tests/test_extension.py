"""The server extension's face: entry point, traits documented, bad config refused."""

from __future__ import annotations

import re
import pytest
import tornado.web

import llmlab
from conftest import ROOT
from llmlab.extension import LLMLabApp
from llmlab.handlers import ROUTES

CONFIG_DOC = ROOT / "docs" / "operators" / "config.md"


def test_extension_point_names_the_app():
    (point,) = llmlab._jupyter_server_extension_points()
    assert point == {"module": "llmlab.extension", "app": LLMLabApp}
    assert LLMLabApp.name == "llmlab"


def test_every_trait_is_documented_and_every_documented_trait_exists():
    traits = LLMLabApp.class_own_traits(config=True)
    documented = set(re.findall(r"^### `LLMLabApp\.(\w+)`", CONFIG_DOC.read_text(), re.M))
    missing = sorted(set(traits) - documented)
    assert not missing, f"traits missing from {CONFIG_DOC.name}: {missing}"
    stale = sorted(documented - set(traits))
    assert not stale, f"{CONFIG_DOC.name} documents traits that do not exist: {stale}"
    for name, trait in traits.items():
        assert trait.help and len(trait.help) > 20, f"LLMLabApp.{name} needs a helpful help="


def test_every_handler_method_requires_authentication():
    seen = 0
    for _, handler in ROUTES:
        for verb in ("get", "post", "put", "patch", "delete"):
            method = handler.__dict__.get(verb)
            if method is None:
                continue
            seen += 1
            # tornado.web.authenticated wraps the method; the wrapper keeps the original.
            assert getattr(method, "__wrapped__", None) is not None, f"{handler.__name__}.{verb}"
            assert method.__code__ is tornado.web.authenticated(lambda self: None).__code__
    assert seen == 15   # proxy + health 5, metrics 1, keys/budgets/alerts (policy_api.py) 9


def test_the_registered_routes_show_authenticated_methods_only():
    """What Jupyter audits at startup: the routes as registered (handlers/lean.py's included)."""
    from llmlab.handlers import server_routes

    for _, target, *_ in server_routes(application=None):
        for verb in target.SUPPORTED_METHODS:
            method = getattr(target, verb.lower())
            if method is tornado.web.RequestHandler._unimplemented_method or \
                    hasattr(method, "__allow_unauthenticated"):   # Jupyter's CORS preflight
                continue
            assert method.__code__ is tornado.web.authenticated(lambda self: None).__code__, \
                f"{target.__name__}.{verb}"


@pytest.mark.parametrize("value", ["maybe"])
def test_store_bodies_accepts_only_known_modes(value):
    from traitlets import TraitError

    with pytest.raises(TraitError):
        LLMLabApp(store_bodies=value)
