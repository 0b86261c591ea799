"""The usage record: one row of ``requests`` (DESIGN §3).

Token columns are additive so sums never double count:
``total_tokens = input_tokens + cache_read_tokens + cache_write_tokens + output_tokens``;
``input_tokens`` is uncached input only; ``output_tokens`` includes ``reasoning_tokens``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

# (column, DuckDB type) in table order: the single source for the table, the journal's JSON
# transform and the documentation (docs/developers/schema.md is checked against it by a test).
COLUMNS: list[tuple[str, str]] = [
    ("request_id", "VARCHAR"),
    ("source", "VARCHAR"),
    ("started_at", "TIMESTAMPTZ"),
    ("ended_at", "TIMESTAMPTZ"),
    ("duration_ms", "DOUBLE"),
    ("ttft_ms", "DOUBLE"),
    ("endpoint", "VARCHAR"),
    ("stream", "BOOLEAN"),
    ("status_code", "INTEGER"),
    ("error_type", "VARCHAR"),
    ("error_message", "VARCHAR"),
    ("model_requested", "VARCHAR"),
    ("model", "VARCHAR"),
    ("provider", "VARCHAR"),
    ("api_base", "VARCHAR"),
    ("input_tokens", "BIGINT"),
    ("output_tokens", "BIGINT"),
    ("cache_read_tokens", "BIGINT"),
    ("cache_write_tokens", "BIGINT"),
    ("cache_write_5m_tokens", "BIGINT"),
    ("cache_write_1h_tokens", "BIGINT"),
    ("reasoning_tokens", "BIGINT"),
    ("total_tokens", "BIGINT"),
    ("cost_usd", "DECIMAL(18,12)"),
    ("pricing_source", "VARCHAR"),
    ("project", "VARCHAR"),
    ("client", "VARCHAR"),
    ("user_id", "VARCHAR"),
    ("session_id", "VARCHAR"),
    ("key_id", "VARCHAR"),
    ("tags", "VARCHAR[]"),
    ("metadata", "JSON"),
    ("request_body", "JSON"),
    ("response_body", "JSON"),
    # Added by m002_claude_code_import: agent-log provenance (Claude Code's session logs).
    ("message_id", "VARCHAR"),
    ("provider_request_id", "VARCHAR"),
    ("log_session_id", "VARCHAR"),
    ("cwd", "VARCHAR"),
    ("git_branch", "VARCHAR"),
    ("is_sidechain", "BOOLEAN"),
    ("agent_version", "VARCHAR"),
    ("speed", "VARCHAR"),
    ("recorded_cost_usd", "DECIMAL(18,12)"),
    ("calculated_cost_usd", "DECIMAL(18,12)"),
    ("log_file", "VARCHAR"),
    ("log_line", "BIGINT"),
]
COLUMN_NAMES = [name for name, _ in COLUMNS]
COLUMN_TYPES = dict(COLUMNS)
TOKEN_COLUMNS = [
    "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
    "cache_write_5m_tokens", "cache_write_1h_tokens", "reasoning_tokens", "total_tokens",
]
_JSON_COLUMNS = {"metadata", "request_body", "response_body"}


@dataclass(slots=True)
class UsageRecord:
    """One LLM call (proxy) or one deduplicated assistant message (import)."""

    request_id: str
    source: str
    started_at: datetime
    ended_at: datetime | None = None
    duration_ms: float | None = None
    ttft_ms: float | None = None
    endpoint: str | None = None
    stream: bool | None = None
    status_code: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    model_requested: str | None = None
    model: str | None = None
    provider: str | None = None
    api_base: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    cache_write_5m_tokens: int | None = None
    cache_write_1h_tokens: int | None = None
    reasoning_tokens: int | None = None
    total_tokens: int | None = None
    cost_usd: Decimal | None = None
    pricing_source: str | None = None
    project: str | None = None
    client: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    key_id: str | None = None
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    request_body: Any = None
    response_body: Any = None
    message_id: str | None = None
    provider_request_id: str | None = None
    log_session_id: str | None = None
    cwd: str | None = None
    git_branch: str | None = None
    is_sidechain: bool | None = None
    agent_version: str | None = None
    speed: str | None = None
    recorded_cost_usd: Decimal | None = None
    calculated_cost_usd: Decimal | None = None
    log_file: str | None = None
    log_line: int | None = None

    def finalize_totals(self) -> "UsageRecord":
        """Fill ``total_tokens`` from the additive parts when it is not known."""
        if self.total_tokens is None:
            parts = [self.input_tokens, self.cache_read_tokens, self.cache_write_tokens,
                     self.output_tokens]
            if any(p is not None for p in parts):
                self.total_tokens = sum(p or 0 for p in parts)
        return self

    def to_json_line(self) -> bytes:
        """The journal form: one compact JSON object and a newline."""
        out: dict[str, Any] = {}
        for name in _FIELD_NAMES:
            v = getattr(self, name)
            if v is None:
                continue
            if name in _JSON_COLUMNS:
                # JSON columns travel as JSON text so DuckDB stores them verbatim.
                v = _dumps(v)
            elif isinstance(v, datetime):
                if v.tzinfo is None:
                    v = v.replace(tzinfo=timezone.utc)
                v = v.isoformat()
            elif isinstance(v, Decimal):
                v = str(v)
            out[name] = v
        return (_dumps(out) + "\n").encode()


_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(UsageRecord))
_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)
_dumps = _encoder.encode
