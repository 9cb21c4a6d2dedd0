"""API keys and workspaces. Keys are never stored: a workspace is named by a hash of its key."""

from __future__ import annotations

import hashlib
import hmac

from .errors import Unauthorized


def workspace_of(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class KeyRing:
    """Accepted keys (hashed). With none configured, every bearer token is its own workspace."""

    def __init__(self, keys: str | None) -> None:
        self.hashes = {workspace_of(k.strip()) for k in (keys or "").split(",") if k.strip()}

    @property
    def open(self) -> bool:
        return not self.hashes

    def authenticate(self, authorization: str | None) -> str:
        token = bearer_token(authorization)
        if token is None:
            raise Unauthorized("Missing bearer token: send 'Authorization: Bearer <key>'")
        workspace = workspace_of(token)
        if self.open:
            return workspace
        if not any(hmac.compare_digest(workspace, known) for known in self.hashes):
            raise Unauthorized("Invalid API key")
        return workspace
