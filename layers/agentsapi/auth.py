"""API keys and workspaces.

A key is never stored: DynamoDB holds ``sha256(key)`` with the workspace it opens (created by
``cli/api_key.py``), and the authorizer and the handlers look the hash up. Keys are 256-bit
random tokens, so an unsalted fast hash is the right tool (as for GitHub tokens): there is no
low-entropy secret to stretch, and a lookup must stay one GetItem.

Modes (``AUTH_MODE``): ``keys`` accepts only keys found in the table or listed in ``API_KEYS``;
``open`` (local development) also accepts any other bearer token as its own workspace;
``auto`` is ``open`` unless ``API_KEYS`` is set. ``keys`` is the default (fail closed);
``make serve`` and the tests choose ``auto``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .errors import InvalidRequest, Unauthorized
from .models.api_keys import ApiKeyRecord

if TYPE_CHECKING:
    from .settings import Settings

KEY_PREFIX = "agk_"
WORKSPACE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def workspace_of(key: str) -> str:
    """The workspace of a key that has no record (``API_KEYS`` or open mode): named by its hash."""
    return hash_key(key)[:32]


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


@dataclass(frozen=True)
class Principal:
    """Who is calling: the workspace their data lives in, and their per-minute request allowance."""

    workspace: str
    rate_limit_per_minute: int | None = None  # None: the deployment's default
    key_id: str | None = None  # which key (a workspace may have several): batch's created_by_me


class KeyStore(Protocol):
    def get_key(self, key_hash: str) -> ApiKeyRecord | None: ...
    def put_key(self, key_hash: str, record: ApiKeyRecord) -> None: ...
    def list_keys(self) -> list[ApiKeyRecord]: ...
    def revoke_key(self, key_id: str, now: int) -> ApiKeyRecord | None: ...


class Authenticator:
    """Bearer key -> Principal. Lookups are cached briefly: a revoked key stops working within
    ``cache_ttl_s`` (the API Gateway authorizer's own cache has the same TTL)."""

    def __init__(self, env_keys: str | None, store: KeyStore | None, mode: str = "keys", cache_ttl_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.env_hashes = {hash_key(k.strip()) for k in (env_keys or "").split(",") if k.strip()}
        self.open = mode == "open" or (mode == "auto" and not self.env_hashes)
        self.store = store
        self.cache_ttl_s = cache_ttl_s
        self.clock = clock
        self._cache: dict[str, tuple[float, ApiKeyRecord | None]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, store: KeyStore) -> Authenticator:
        """As the API functions and the API Gateway authorizer both configure it."""
        return cls(settings.api_keys, store, mode=settings.auth_mode, cache_ttl_s=settings.auth_cache_ttl_s)

    def authenticate(self, authorization: str | None) -> Principal:
        token = bearer_token(authorization)
        if token is None:
            raise Unauthorized("Missing bearer token: send 'Authorization: Bearer <key>'")
        digest = hash_key(token)
        record = self._record(digest)
        if record is not None:
            if record.revoked_at is not None:
                raise Unauthorized("This API key has been revoked")
            return Principal(record.workspace, record.rate_limit_per_minute, record.key_id)
        if self.open or any(hmac.compare_digest(digest, known) for known in self.env_hashes):
            return Principal(digest[:32], key_id=digest[:32])
        raise Unauthorized("Invalid API key")

    def _record(self, digest: str) -> ApiKeyRecord | None:
        if self.store is None:
            return None
        now = self.clock()
        with self._lock:
            cached = self._cache.get(digest)
        if cached and now - cached[0] < self.cache_ttl_s:
            return cached[1]
        record = self.store.get_key(digest)
        with self._lock:
            if len(self._cache) > 10_000:  # unknown tokens must not grow the cache without bound
                self._cache.clear()
            self._cache[digest] = (now, record)
        return record


@dataclass(frozen=True)
class IssuedKey:
    key: str  # shown once, never stored
    record: ApiKeyRecord


class ApiKeyService:
    """Create, list and revoke keys (the operator's CLI drives this against a stack's table)."""

    def __init__(self, store: KeyStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def create(self, workspace: str, name: str = "", rate_limit_per_minute: int | None = None) -> IssuedKey:
        if not WORKSPACE_NAME.match(workspace):
            raise InvalidRequest("workspace must be 1-64 letters, digits, '.', '_' or '-', starting with a letter "
                                 "or digit", param="workspace")
        if rate_limit_per_minute is not None and rate_limit_per_minute < 1:
            raise InvalidRequest("rate_limit_per_minute must be at least 1", param="rate_limit_per_minute")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        record = ApiKeyRecord(key_id="key_" + secrets.token_hex(8), workspace=workspace, name=name,
                              hint=key[:len(KEY_PREFIX) + 4] + "..." + key[-4:], created_at=int(self.clock()),
                              rate_limit_per_minute=rate_limit_per_minute)
        self.store.put_key(hash_key(key), record)
        return IssuedKey(key, record)

    def list(self) -> list[ApiKeyRecord]:
        return self.store.list_keys()

    def revoke(self, key_id: str) -> ApiKeyRecord:
        record = self.store.revoke_key(key_id, int(self.clock()))
        if record is None:
            raise InvalidRequest(f"no API key with id {key_id}", param="key_id")
        return record
