"""Every error llmlab raises on purpose, in one tree.

    LLMLabError
     ├── ConfigError            a setting, a config file or a path is wrong
     ├── StoreError             the usage store cannot do what was asked
     │    ├── StoreLockedError  another process holds usage.duckdb past the bounded wait
     │    └── MigrationError    the schema cannot be brought up to date
     ├── QueryError             bad arguments to a query helper (also a ValueError)
     ├── PricingError           a price override is malformed
     ├── ProxyError             a proxied call failed; carries an HTTP status and OpenAI error type
     │    ├── BadRequestError   malformed or invalid request (4xx)
     │    ├── UpstreamError     the provider failed, timed out or could not be reached
     │    ├── BudgetExceededError  a hard budget is spent (429 insufficient_quota)
     │    └── RateLimitedError  a key's requests/tokens per minute are used up (429, Retry-After)
     ├── LogImportError         usage logs (e.g. Claude Code's) could not be imported
     └── InvoiceError           invoice parameters or data are wrong

Catch ``LLMLabError`` to handle anything llmlab raises deliberately; anything else is a bug.
"""

from __future__ import annotations


class LLMLabError(Exception):
    """Base class of every deliberate llmlab error."""


class ConfigError(LLMLabError):
    """A setting, a config file or a path is wrong."""


class StoreError(LLMLabError):
    """The usage store cannot do what was asked."""


class StoreLockedError(StoreError):
    """Another process kept usage.duckdb locked for longer than the bounded wait."""

    def __init__(self, path, pid: int | None, waited_s: float, detail: str = ""):
        self.path = str(path)
        self.pid = pid
        self.waited_s = waited_s
        holder = f"process {pid}" if pid else "another process"
        msg = (
            f"{self.path} is locked by {holder}; gave up after {waited_s:.1f}s. "
            "llmlab only holds the file for one operation at a time, so a long holder is usually "
            "a notebook or shell with its own duckdb.connect(); close it (records keep waiting "
            "safely in the journal meanwhile)."
        )
        if detail:
            msg += f" [{detail}]"
        super().__init__(msg)


class MigrationError(StoreError):
    """The schema cannot be brought up to date."""


class QueryError(LLMLabError, ValueError):
    """Bad arguments to a query helper: unknown column, since > until, unknown timezone..."""


class PricingError(LLMLabError):
    """A price override is malformed."""


class ProxyError(LLMLabError):
    """A proxied call failed. ``status`` is the HTTP status, ``error_type`` OpenAI's error type."""

    status = 500
    error_type = "api_error"

    def __init__(self, message: str, *, status: int | None = None, error_type: str | None = None,
                 param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if error_type is not None:
            self.error_type = error_type
        self.param = param
        self.code = code


class BadRequestError(ProxyError):
    """The request is malformed or invalid."""

    status = 400
    error_type = "invalid_request_error"


class UpstreamError(ProxyError):
    """The provider failed, timed out or could not be reached."""

    status = 502
    error_type = "upstream_error"


class BudgetExceededError(ProxyError):
    """A hard budget is spent: the call is refused (``.entry``: the budget's ledger entry)."""

    status = 429
    error_type = "insufficient_quota"


class RateLimitedError(ProxyError):
    """A virtual key's requests or tokens per minute are used up (``.headers``: Retry-After)."""

    status = 429
    error_type = "rate_limit_error"


class LogImportError(LLMLabError):
    """Usage logs could not be imported."""


class InvoiceError(LLMLabError):
    """Invoice parameters or data are wrong."""
