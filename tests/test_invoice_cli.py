"""``llmlab invoice`` argument handling: bad parameters fail before any kernel starts."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from llmlab.cli import build_parser, main
from llmlab.store import UsageRecord


@pytest.fixture
def acme_store(store):
    store.journal().append_many([
        UsageRecord(request_id=str(uuid.uuid4()), source="proxy", client=client, model="gpt-4o",
                    started_at=datetime(2025, 10, 10, 12, tzinfo=timezone.utc), status_code=200,
                    input_tokens=10, output_tokens=5, total_tokens=15, cost_usd=Decimal("0.5"))
        for client in ("acme", "globex")])
    store.flush()
    return store


@pytest.mark.parametrize("args, message", [
    (["--month", "2025-1", "--client", "acme"], "month='2025-1' is not a month; write it as YYYY-MM"),
    (["--month", "2025-10", "--client", "acme", "--markup", "-5"], "markup_pct must be 0 or more, got -5"),
    (["--month", "2025-10", "--client", "wayne"],
     "no usage for client 'wayne' in 2025-10 (UTC). Clients with usage in 2025-10: acme, globex."),
    (["--month", "2999-01", "--client", "acme"], "month 2999-01 is in the future"),
    (["--client", "acme"], "--month is required"),
    (["--month", "2025-10"], "say whom to bill"),
    (["--month", "2025-10", "--client", "acme", "--currency", "EUR"], "currency EUR needs fx_rate"),
    (["--render", "nowhere/invoice.ipynb"], "does not exist"),
])
def test_bad_parameters_exit_2_with_one_clear_line(acme_store, capsys, tmp_path, args, message):
    code = main(["invoice", "--out", str(tmp_path / "out"), "--no-pdf", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("llmlab: error: ") and message in err
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_help_documents_every_option():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["invoice"]
    text = sub.format_help()
    for option in ("--month", "--client", "--all-clients", "--project", "--source", "--markup",
                   "--tax", "--currency", "--fx-rate", "--number", "--due-days", "--group-by",
                   "--timezone", "--issue-date", "--config", "--out", "--no-pdf", "--notebook",
                   "--render", "--home"):
        assert option in text
    assert "OUT/YYYY-MM/CLIENT/" in text and "docs/users/invoices.md" in text


ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "users" / "invoices.md"


def test_docs_cover_every_option_parameter_and_config_key():
    import inspect

    import nbformat

    from llmlab.invoice import build_invoice
    from llmlab.invoicing.config import ISSUER_KEYS, RECIPIENT_KEYS, TERM_KEYS

    doc = DOC.read_text(encoding="utf-8")
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["invoice"]
    for action in sub._actions:
        for flag in action.option_strings:
            if flag.startswith("--") and flag not in ("--help", "--quiet", "--tz"):
                assert f"`{flag}" in doc, f"{flag} is not documented"
    for key in ISSUER_KEYS + RECIPIENT_KEYS + TERM_KEYS:
        assert f"`{key}`" in doc, f"config key {key} is not documented"

    nb = nbformat.read(str(ROOT / "notebooks" / "invoice.ipynb"), as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    names = [line.split("=")[0].strip() for line in tagged[0].source.splitlines() if "=" in line]
    accepted = set(inspect.signature(build_invoice).parameters) - {"today"}
    assert set(names) == accepted | {"output_dir"}
    for name in names:
        assert f"`{name}`" in doc, f"notebook parameter {name} is not documented"
    assert "-r month 2026-10" in doc and "half-up" in doc
