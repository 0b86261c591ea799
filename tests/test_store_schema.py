"""COLUMNS is the single source of the schema: the record, the journal and the docs follow it."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from llmlab.store import UsageRecord
from llmlab.store.schema import COLUMN_NAMES, COLUMNS, TOKEN_COLUMNS

DOC = Path(__file__).resolve().parents[1] / "docs" / "developers" / "schema.md"
ROW = re.compile(r"^\|\s*`([a-z0-9_]+)`\s*\|\s*`([^`]+)`\s*\|\s*(.*?)\s*\|\s*$")


def _documented() -> list[tuple[str, str, str]]:
    text = DOC.read_text()
    section = text.split("## `requests`", 1)[1].split("\n## ", 1)[0]
    return [m.groups() for line in section.splitlines() if (m := ROW.match(line))]


def test_every_column_is_documented_with_its_type_in_order():
    documented = _documented()
    names = [n for n, _, _ in documented]
    missing = [c for c in COLUMN_NAMES if c not in names]
    assert not missing, f"columns missing from docs/developers/schema.md: {missing}"
    extra = [n for n in names if n not in COLUMN_NAMES]
    assert not extra, f"docs/developers/schema.md documents columns that do not exist: {extra}"
    assert [(n, t) for n, t, _ in documented] == COLUMNS
    for name, _, meaning in documented:
        assert len(meaning) > 20, f"{name}: say what it means and in which units"


def test_the_record_has_exactly_the_columns():
    assert [f.name for f in dataclasses.fields(UsageRecord)] == COLUMN_NAMES
    assert set(TOKEN_COLUMNS) <= set(COLUMN_NAMES)


def test_journal_line_is_compact_json_without_nulls():
    r = UsageRecord(request_id="a", source="proxy",
                    started_at=datetime(2026, 10, 1, 12, 0, tzinfo=timezone.utc),
                    input_tokens=3, output_tokens=4, cost_usd=Decimal("0.000000000123"),
                    metadata={"k": "v"}, tags=["x"]).finalize_totals()
    line = r.to_json_line()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    data = json.loads(line)
    assert data["total_tokens"] == 7
    assert Decimal(data["cost_usd"]) == Decimal("0.000000000123")  # exact: decimals travel as text
    assert data["started_at"] == "2026-10-01T12:00:00+00:00"
    assert json.loads(data["metadata"]) == {"k": "v"}
    assert "model" not in data  # None is left out
    # A newline inside a value stays escaped: one record is always one line.
    r.error_message = "a\nb"
    assert r.to_json_line().count(b"\n") == 1
