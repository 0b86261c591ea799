"""Docs kept honest: every setting, command and option is documented; every link resolves.

Traits and commands are enumerated from the code, so whatever is added later is checked too.
The CLI reference is generated (scripts/cli_reference.py); this file also checks it against the
parser independently of the generator.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from conftest import ROOT

DOCS = ROOT / "docs"
CONFIG_DOC = DOCS / "operators" / "config.md"
CLI_DOC = DOCS / "operators" / "cli.md"
INDEX = DOCS / "README.md"
MARKDOWN = sorted([ROOT / "README.md", *DOCS.rglob("*.md")])


def _cli_reference():
    spec = importlib.util.spec_from_file_location("cli_reference", ROOT / "scripts" / "cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- configuration ------------------------------------------------------------------------------
def _configurables():
    """LLMLabApp and any llmlab Configurable it lists in ``classes``, with their own traits."""
    from llmlab.extension import LLMLabApp

    found = {LLMLabApp}
    for cls in getattr(LLMLabApp, "classes", []) or []:
        if getattr(cls, "__module__", "").startswith("llmlab"):
            found.add(cls)
    return sorted(found, key=lambda c: c.__name__)


TRAITS = [(cls.__name__, name) for cls in _configurables()
          for name in sorted(cls.class_own_traits(config=True))]


def _config_sections() -> dict[str, str]:
    text = CONFIG_DOC.read_text()
    parts = re.split(r"^### `(\w+)\.(\w+)`[^\n]*\n", text, flags=re.M)
    return {f"{parts[i]}.{parts[i + 1]}": parts[i + 2].split("\n## ")[0]
            for i in range(1, len(parts) - 2, 3)}


@pytest.mark.parametrize("cls,name", TRAITS, ids=[f"{c}.{n}" for c, n in TRAITS])
def test_every_config_trait_has_a_section_with_its_type_and_default(cls, name):
    section = _config_sections().get(f"{cls}.{name}")
    assert section is not None, f"docs/operators/config.md has no '### `{cls}.{name}`' section"
    assert "Type:" in section and "Default" in section, \
        f"the section of {cls}.{name} should say its type and default"


def test_config_doc_documents_no_trait_that_does_not_exist():
    existing = {f"{c}.{n}" for c, n in TRAITS}
    stale = sorted(set(_config_sections()) - existing)
    assert not stale, f"docs/operators/config.md documents settings that do not exist: {stale}"


# -- command line ---------------------------------------------------------------------------------
def _walk(parser: argparse.ArgumentParser, prefix: str = "llmlab"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix} {name}", sub
                yield from _walk(sub, f"{prefix} {name}")


def _commands():
    from llmlab.cli import build_parser

    return list(_walk(build_parser()))


def _cli_sections() -> dict[str, str]:
    text = CLI_DOC.read_text()
    parts = re.split(r"^#{2,6} `(llmlab[^`]*)`\n", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_cli_reference_is_generated_from_the_current_parser():
    ref = _cli_reference()
    assert ref.current() == ref.render(), (
        "docs/operators/cli.md is out of date: run `.venv/bin/python scripts/cli_reference.py "
        "--write` and review the diff")


@pytest.mark.parametrize("command", [name for name, _ in _commands()])
def test_every_command_and_option_is_documented(command):
    parser = dict(_commands())[command]
    section = _cli_sections().get(command)
    assert section is not None, f"docs/operators/cli.md has no section for `{command}`"
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
            continue
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices:
                assert f"`{command} {sub}`" in section, f"`{command} {sub}` is not listed"
            continue
        for option in action.option_strings:
            assert f"`{option}`" in section, f"`{command} {option}` is undocumented"
        if not action.option_strings:
            shown = "{" + ",".join(map(str, action.choices)) + "}" if action.choices else None
            assert any(s and f"`{s}`" in section for s in (shown, action.metavar, action.dest)), \
                f"the argument {action.dest} of `{command}` is undocumented"
        if action.help:
            first_words = " ".join(action.help.split()[:3]).replace("<", "&lt;").replace(">", "&gt;")
            assert "%" in action.help or first_words in section, \
                f"the help of `{command} {action.option_strings or action.dest}` is not shown"


# -- links ----------------------------------------------------------------------------------------
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REF_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.M)
_HTML_SRC = re.compile(r"""<(?:img|a)\b[^>]*\b(?:src|href)=["']([^"']+)["']""", re.I)


def _links(path: Path) -> list[str]:
    text = _INLINE_CODE.sub("", _FENCE.sub("", path.read_text()))
    return _LINK.findall(text) + _REF_LINK.findall(text) + _HTML_SRC.findall(text)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|<[^>]+>", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = _FENCE.sub("", path.read_text())
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, re.M):
        slug = _slug(heading)
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out | set(re.findall(r"""<a\s+(?:name|id)=["']([^"']+)["']""", text))


def _relative_links():
    for doc in MARKDOWN:
        for link in _links(doc):
            if re.match(r"^[a-z][a-z0-9+.-]*:", link, re.I) or link.startswith("//"):
                continue        # http(s), mailto: not checked (tests never reach the internet)
            yield doc, link


@pytest.mark.parametrize("doc,link", list(_relative_links()),
                         ids=lambda v: str(v.relative_to(ROOT)) if isinstance(v, Path) else v)
def test_every_relative_link_resolves(doc, link):
    target, _, anchor = link.partition("#")
    path = (doc.parent / unquote(target)).resolve() if target else doc
    assert path.exists(), f"{doc.relative_to(ROOT)} links to {link}, which does not exist"
    assert ROOT in path.parents or path == ROOT, f"{doc.relative_to(ROOT)} links outside the repository"
    if anchor and path.suffix == ".md":
        assert anchor in _anchors(path), f"{doc.relative_to(ROOT)}: no heading #{anchor} in {target or doc.name}"


def test_the_docs_index_links_every_page():
    linked = {(INDEX.parent / unquote(link.partition("#")[0])).resolve() for link in _links(INDEX)}
    pages = {p.resolve() for p in DOCS.rglob("*.md") if p != INDEX}
    missing = sorted(str(p.relative_to(ROOT)) for p in pages - linked)
    assert not missing, f"docs/README.md does not link: {missing}"


def test_the_readme_links_the_docs_index_and_both_binder_badges():
    readme = (ROOT / "README.md").read_text()
    assert "docs/README.md" in _links(ROOT / "README.md")
    badges = re.findall(r"\(https://mybinder\.org/v2/gh/[^)]+\)", readme)
    assert any("urlpath=voila%2Frender%2Fnotebooks%2Fdashboard.ipynb" in b for b in badges), badges
    assert any("urlpath=lab%2Ftree%2Fnotebooks%2Ftour.ipynb" in b for b in badges), badges
    for notebook in ("dashboard.ipynb", "tour.ipynb"):
        assert (ROOT / "notebooks" / notebook).exists()
