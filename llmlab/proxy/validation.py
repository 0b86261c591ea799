"""Checks on a client's request body, answered like OpenAI answers them (400, with ``param``).

Only what the proxy itself relies on is checked; every other field goes to the provider as sent,
and the provider's own validation error comes back passed through.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import BadRequestError


def parse_json_body(raw: bytes, max_bytes: int) -> dict:
    if len(raw) > max_bytes:
        raise BadRequestError(
            f"Request body is {len(raw)} bytes; this proxy accepts at most {max_bytes} "
            "(LLMLabApp.max_body_bytes).", status=413, code="request_too_large")
    if not raw.strip():
        raise BadRequestError("Request body is empty; send a JSON object.", code="invalid_json")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequestError(f"Request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequestError("Request body must be a JSON object.", code="invalid_json")
    return body


def _type_error(param: str, expected: str, value: Any) -> BadRequestError:
    return BadRequestError(f"Invalid type for '{param}': expected {expected}, got "
                           f"{_json_type(value)}.", param=param, code="invalid_type")


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "an object"}.get(type(v), type(v).__name__)


def _model(body: dict) -> str:
    model = body.get("model")
    if model is None:
        raise BadRequestError("Missing required parameter: 'model'.", param="model",
                              code="missing_required_parameter")
    if not isinstance(model, str):
        raise _type_error("model", "a string", model)
    if not model.strip():
        raise BadRequestError("'model' must not be empty.", param="model", code="invalid_value")
    return model


def check_chat(body: dict) -> tuple[str, bool, bool]:
    """(model, stream, client wants the usage chunk) of a chat completion request."""
    model = _model(body)
    messages = body.get("messages")
    if messages is None:
        raise BadRequestError("Missing required parameter: 'messages'.", param="messages",
                              code="missing_required_parameter")
    if not isinstance(messages, list):
        raise _type_error("messages", "an array", messages)
    if not messages:
        raise BadRequestError("'messages' must contain at least one message.", param="messages",
                              code="empty_array")
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise _type_error(f"messages[{i}]", "an object", m)
        if not isinstance(m.get("role"), str):
            raise BadRequestError(f"Missing or invalid 'messages[{i}].role': expected a string.",
                                  param=f"messages[{i}].role", code="invalid_type")
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise _type_error("stream", "a boolean", stream)
    opts = body.get("stream_options")
    if opts is not None and not isinstance(opts, dict):
        raise _type_error("stream_options", "an object", opts)
    include_usage = bool((opts or {}).get("include_usage"))
    return model, stream, include_usage


def check_embeddings(body: dict) -> str:
    model = _model(body)
    inp = body.get("input")
    if inp is None:
        raise BadRequestError("Missing required parameter: 'input'.", param="input",
                              code="missing_required_parameter")
    if isinstance(inp, str):
        return model
    if not isinstance(inp, list):
        raise _type_error("input", "a string or an array", inp)
    if not inp:
        raise BadRequestError("'input' must not be empty.", param="input", code="empty_array")
    for i, item in enumerate(inp):
        if not isinstance(item, (str, int, list)) or isinstance(item, bool):
            raise _type_error(f"input[{i}]", "a string, a token or an array of tokens", item)
    if body.get("stream"):
        raise BadRequestError("Embeddings cannot be streamed.", param="stream", code="invalid_value")
    return model
