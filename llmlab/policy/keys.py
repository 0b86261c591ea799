"""Virtual keys: ``sk-llmlab-<key_id>-<secret>``, shown once, stored only as a hash.

``key_id`` is public (12 hex digits): it names the key in lists, budgets, alerts and the
``requests.key_id`` column. ``secret`` is 32 random bytes (URL-safe base64). The store keeps
``sha256(full key)`` and a display prefix (``sk-llmlab-<key_id>-`` plus 4 characters of the
secret). A plain, fast hash is enough here because the secret is random with 256 bits of
entropy: nothing can be guessed or looked up in a dictionary, so a slow password hash (bcrypt,
scrypt) would only add milliseconds to every proxied call (docs/developers/budgets.md).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone

KEY_PREFIX = "sk-llmlab-"
_KEY_ID_RE = re.compile(r"^[0-9a-f]{12}$")
SHOWN_SECRET_CHARS = 4


def new_key_id() -> str:
    return secrets.token_hex(6)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def format_key(key_id: str, secret: str) -> str:
    return f"{KEY_PREFIX}{key_id}-{secret}"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key_id: str, secret: str) -> str:
    return f"{KEY_PREFIX}{key_id}-{secret[:SHOWN_SECRET_CHARS]}"


def looks_like_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)


def parse_key(token: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed key, else None."""
    if not token.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = token[len(KEY_PREFIX):].partition("-")
    if not sep or not secret or not _KEY_ID_RE.match(key_id):
        return None
    return key_id, secret


def valid_key_id(key_id: str) -> bool:
    return bool(_KEY_ID_RE.match(key_id or ""))


@dataclass(frozen=True)
class VirtualKey:
    """A key as the server holds it in memory: everything but the secret."""

    key_id: str
    prefix: str
    secret_hash: str
    project: str
    client: str | None = None
    name: str | None = None
    models: tuple[str, ...] = field(default_factory=tuple)
    rpm: int | None = None
    tpm: int | None = None
    expires_at: datetime | None = None
    created_at: datetime | None = None
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None

    def matches(self, token: str) -> bool:
        return hmac.compare_digest(self.secret_hash, hash_key(token))

    def expired(self, now: datetime | None = None) -> bool:
        if self.expires_at is None:
            return False
        return (now or datetime.now(timezone.utc)) >= self.expires_at

    def status(self, now: datetime | None = None) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expired(now) else "active"

    def public(self, now: datetime | None = None) -> dict:
        """What lists, the REST route and the CLI show (no hash, no secret)."""
        iso = (lambda t: None if t is None else t.isoformat())
        return {"key_id": self.key_id, "prefix": self.prefix, "name": self.name,
                "project": self.project, "client": self.client, "models": list(self.models),
                "rpm": self.rpm, "tpm": self.tpm, "expires_at": iso(self.expires_at),
                "created_at": iso(self.created_at), "rotated_at": iso(self.rotated_at),
                "revoked_at": iso(self.revoked_at), "status": self.status(now)}
