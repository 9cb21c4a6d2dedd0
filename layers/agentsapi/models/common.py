"""Shared model bases, ids and timestamps."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Request bodies: unknown fields are refused (the OpenAPI sets additionalProperties: false)."""

    model_config = ConfigDict(extra="forbid")


class ApiModel(BaseModel):
    """Response and stored objects: tolerant when reading back, explicit when writing."""

    model_config = ConfigDict(extra="ignore")


def new_id(prefix: str) -> str:
    """``<prefix>`` + 32 hex chars, time-ordered like the UUIDv7 ids Mistral returns."""
    millis = time.time_ns() // 1_000_000
    return f"{prefix}{millis:012x}{os.urandom(10).hex()}"


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
