"""One proxied call from arrival to its usage record.

A :class:`Call` collects what the handler learns (attribution, route, upstream status, usage,
timings) and :meth:`Call.to_record` turns it into a :class:`~llmlab.store.UsageRecord`. Hooks
(budgets, rate limits, keys: a later feature) see the Call before it is forwarded and the record
after it is journaled.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ..errors import BadRequestError, ProxyError
from ..store.schema import UsageRecord
from .bodies import request_body_for_storage, response_body_for_storage
from .routing import Route
from .usage import tokens_from_usage

# How the journal encodes values (as UsageRecord.to_json_line does).
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode
_JSON_TEXT = frozenset({"metadata", "request_body", "response_body"})
_TIMES = frozenset({"started_at", "ended_at"})

HEADER_PROJECT = "X-LLMLab-Project"
HEADER_CLIENT = "X-LLMLab-Client"
HEADER_USER = "X-LLMLab-User"
HEADER_SESSION = "X-LLMLab-Session"
HEADER_TAGS = "X-LLMLab-Tags"
MAX_LABEL = 256
MAX_ERROR_MESSAGE = 2000
# The status nginx made conventional for "the client closed the connection first".
CLIENT_CLOSED = 499


@dataclass
class Attribution:
    project: str | None = None
    client: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] | None = None


def _label(v: Any) -> str | None:
    if v is None:
        return None
    s = str(v).strip()
    return s[:MAX_LABEL] or None


def _tags(v: Any) -> list[str]:
    if v is None:
        return []
    items = v.split(",") if isinstance(v, str) else v if isinstance(v, list) else [v]
    return [t for t in (_label(x) for x in items) if t]


_PREFIX = "x-llmlab-"
_KEYS = {"project": HEADER_PROJECT.lower(), "client": HEADER_CLIENT.lower(),
         "user_id": HEADER_USER.lower(), "session_id": HEADER_SESSION.lower()}
_TAGS_KEY = HEADER_TAGS.lower()


def llmlab_headers(headers) -> dict[str, str]:
    """The request's X-LLMLab-* headers, keys lowercased (one pass over the headers)."""
    return {k.lower(): v for k, v in headers.items() if k[:9].lower() == _PREFIX}


def attribution_from_headers(headers: dict[str, str], default_project: str | None) -> Attribution:
    """``headers`` as returned by :func:`llmlab_headers`."""
    if not headers:
        return Attribution(project=default_project)
    return Attribution(
        project=_label(headers.get(_KEYS["project"])) or default_project,
        client=_label(headers.get(_KEYS["client"])),
        user_id=_label(headers.get(_KEYS["user_id"])),
        session_id=_label(headers.get(_KEYS["session_id"])),
        tags=_tags(headers.get(_TAGS_KEY)),
    )


def apply_body_attribution(attr: Attribution, headers: dict[str, str], body: dict,
                           default_project: str | None) -> None:
    """Fill what the headers did not say from the body's ``metadata`` and ``user``."""
    meta = body.get("metadata")
    user = body.get("user")
    if meta is None and user is None:
        return
    if meta is not None and not isinstance(meta, dict):
        raise BadRequestError("'metadata' must be an object", param="metadata", code="invalid_type")
    if user is not None and not isinstance(user, str):
        raise BadRequestError("'user' must be a string", param="user", code="invalid_type")
    meta = dict(meta or {})
    fields = {
        "project": meta.pop("project", None),
        "client": meta.pop("client", None),
        "user_id": meta.pop("user_id", meta.pop("user", None)),
        "session_id": meta.pop("session_id", meta.pop("session", None)),
    }
    tags = meta.pop("tags", None)
    if fields["user_id"] is None:
        fields["user_id"] = user
    for name, value in fields.items():
        if value is not None and not headers.get(_KEYS[name]):
            setattr(attr, name, _label(value))
    if attr.project is None:
        attr.project = default_project
    if not headers.get(_TAGS_KEY) and tags is not None:
        attr.tags = _tags(tags)
    attr.metadata = meta or None


_V4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_V4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_request_id() -> str:
    """A random version-4 UUID string, ~10x cheaper than ``str(uuid.uuid4())`` (no syscall, no
    UUID object). The PRNG is seeded from the OS and reseeded in forked children."""
    h = "%032x" % ((random.getrandbits(128) & _V4_CLEAR) | _V4_SET)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Call:
    """State of one call; cheap to create (it is on every request's path)."""

    __slots__ = (
        "request_id", "endpoint", "started_at", "t0", "attribution", "model_requested", "route",
        "stream", "status", "error_type", "error_message", "usage", "reported_model",
        "request_body", "response_body", "ttft_s", "upstream_s", "upstream_started", "key_id",
        "recorded", "t_end", "extra", "_request_part", "_answer_part",
    )

    def __init__(self, endpoint: str, attribution: Attribution, t0: float | None = None):
        self.request_id = new_request_id()
        self.endpoint = endpoint
        now = time.time()
        self.t0 = time.perf_counter() if t0 is None else t0
        # Wall clock of arrival: the perf counter's elapsed time taken off "now".
        self.started_at = datetime.fromtimestamp(now - (time.perf_counter() - self.t0), timezone.utc)
        self.attribution = attribution
        self.model_requested: str | None = None
        self.route: Route | None = None
        self.stream = False
        self.status = 200
        self.error_type: str | None = None
        self.error_message: str | None = None
        self.usage: dict | None = None
        self.reported_model: str | None = None
        self.request_body: Any = None
        self.response_body: Any = None
        self.ttft_s: float | None = None
        self.upstream_s = 0.0          # time spent waiting on the upstream
        self.upstream_started: float | None = None
        self.key_id: str | None = None
        self.recorded = False          # set by ProxyService.record: exactly once per call
        self.t_end: float | None = None
        self.extra: dict | None = None  # for hooks
        self._request_part: tuple[dict, str] | None = None   # prepare_record()
        self._answer_part: dict | None = None                # journal_line()

    # -- what happened ---------------------------------------------------------------------
    def fail(self, exc: ProxyError, scrub=None) -> None:
        self.status = exc.status
        self.error_type = exc.code or exc.error_type
        msg = exc.message if scrub is None else scrub(exc.message)
        self.error_message = msg[:MAX_ERROR_MESSAGE]

    def upstream_begin(self) -> None:
        self.upstream_started = time.perf_counter()

    def upstream_end(self) -> None:
        if self.upstream_started is not None:
            self.upstream_s += time.perf_counter() - self.upstream_started
            self.upstream_started = None

    def overhead_ms(self) -> float:
        """The proxy's own time so far: elapsed minus time spent waiting on the upstream."""
        waiting = self.upstream_s
        if self.upstream_started is not None:
            waiting += time.perf_counter() - self.upstream_started
        return max((time.perf_counter() - self.t0 - waiting) * 1000.0, 0.0)

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.t0) * 1000.0

    # -- the record ------------------------------------------------------------------------
    # A record is the columns known before the answer (who, what, where to) and those the answer
    # brings (status, usage, cost, timings). The first part can be encoded while the upstream
    # works (prepare_record); only the second is left for the moment between the answer
    # arriving and the response going out, when the record must be journaled.

    def request_values(self, body_mode: str) -> dict[str, Any]:
        """The columns known before the answer; None where unknown."""
        dep = self.route.deployment if self.route else None
        attr = self.attribution
        return {
            "request_id": self.request_id, "source": "proxy", "started_at": self.started_at,
            "endpoint": self.endpoint, "stream": self.stream,
            "model_requested": self.model_requested,
            "provider": dep.provider if dep else None,
            "api_base": dep.safe_api_base if dep else None,
            "project": attr.project, "client": attr.client, "user_id": attr.user_id,
            "session_id": attr.session_id, "key_id": self.key_id, "tags": list(attr.tags),
            "metadata": attr.metadata,
            "request_body": request_body_for_storage(self.request_body, body_mode),
        }

    def answer_values(self, pricer, body_mode: str) -> dict[str, Any]:
        """The columns the answer brings (and the call's end): only the known ones."""
        end = self.t_end if self.t_end is not None else time.perf_counter()
        duration_s = end - self.t0
        dep = self.route.deployment if self.route else None
        v: dict[str, Any] = {
            "ended_at": self.started_at + timedelta(seconds=duration_s),
            "duration_ms": round(duration_s * 1000.0, 3), "status_code": self.status,
        }
        if self.ttft_s is not None:
            v["ttft_ms"] = round(self.ttft_s * 1000.0, 3)
        if self.error_type is not None:
            v["error_type"] = self.error_type
        if self.error_message is not None:
            v["error_message"] = self.error_message
        model = self.reported_model or (dep.upstream_model if dep else None)
        if model is not None:
            v["model"] = model
        if self.response_body is not None:
            v["response_body"] = response_body_for_storage(self.response_body, body_mode)
        tokens = tokens_from_usage(self.usage)
        if tokens is not None:
            v["input_tokens"] = tokens.input_tokens
            v["output_tokens"] = tokens.output_tokens
            v["cache_read_tokens"] = tokens.cache_read_tokens
            v["cache_write_tokens"] = tokens.cache_write_tokens
            v["cache_write_5m_tokens"] = tokens.cache_write_5m_tokens
            v["cache_write_1h_tokens"] = tokens.cache_write_1h_tokens
            v["reasoning_tokens"] = tokens.reasoning_tokens
            v["total_tokens"] = tokens.total_tokens
            if dep is not None:
                v["cost_usd"], v["pricing_source"] = pricer.cost_of(dep, self.reported_model, tokens)
        return v

    def record_values(self, pricer, body_mode: str) -> dict[str, Any]:
        """Every column of the record (the one source of the record and its journal line)."""
        return {**self.request_values(body_mode), **self.answer_values(pricer, body_mode)}

    def to_record(self, pricer, body_mode: str) -> UsageRecord:
        return UsageRecord(**self.record_values(pricer, body_mode))

    def prepare_record(self, body_mode: str) -> None:
        """Encode the columns known before the answer, once (the proxy calls this while the
        upstream works: at one call in flight it is idle then)."""
        if self._request_part is None:
            values = self.request_values(body_mode)
            self._request_part = (values, _dumps(_journal_form(values))[:-1])

    def journal_line(self, pricer, body_mode: str) -> bytes:
        """Exactly the line ``to_record(...).to_json_line()`` writes (tests/test_proxy_parts.py
        pins that), without building the dataclass: this runs between the answer arriving and
        the response going out. The answer's columns are kept for :meth:`usage_record`."""
        self.prepare_record(body_mode)
        answer = self._answer_part = self.answer_values(pricer, body_mode)
        # Two JSON objects with distinct keys joined into one: '{"a":1' + ',' + '"b":2}'.
        return (self._request_part[1] + "," + _dumps(_journal_form(answer))[1:] + "\n").encode()

    def usage_record(self, pricer, body_mode: str) -> UsageRecord:
        """The record :meth:`journal_line` wrote, from the parts it kept (hooks want it after
        the answer); built now if no line was made."""
        if self._answer_part is None:
            return self.to_record(pricer, body_mode)
        return UsageRecord(**self._request_part[0], **self._answer_part)


def _journal_form(values: dict[str, Any]) -> dict[str, Any]:
    """The values as the journal line holds them (UsageRecord.to_json_line's encoding)."""
    out = {}
    for name, value in values.items():
        if value is None:
            continue
        if name in _JSON_TEXT:
            value = _dumps(value)
        elif name in _TIMES:
            value = value.isoformat()
        elif name == "cost_usd":
            value = str(value)
        out[name] = value
    return out
