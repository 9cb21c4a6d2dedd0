"""The stored record of an API key (the key itself is never stored, only its hash)."""

from __future__ import annotations

from pydantic import BaseModel


class ApiKeyRecord(BaseModel):
    key_id: str
    workspace: str
    name: str = ""
    hint: str  # the first and last characters, so an operator can tell keys apart
    created_at: int
    revoked_at: int | None = None
    rate_limit_per_minute: int | None = None
